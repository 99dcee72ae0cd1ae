//! `T:` (TLS) interfaces between the real binaries, with throwaway
//! certificates made by `openssl` for each test: a CA with a server and a
//! client certificate, and a second CA with a client certificate of its own.
//!
//! * 1 M records from flow_generator over `T:` to traffic_repeater, strictly
//!   in order and identical to the same records written to a file;
//! * a client whose certificate another CA signed is refused (the output
//!   logs why and goes on serving), a client that does not trust the
//!   output's CA refuses it, both exit non-zero with the cause;
//! * OpenSSL's s_client and s_server (C libtrap's TLS library) talk to our
//!   output and input, and get exactly the bytes of a `t:` stream; TLS 1.1
//!   is refused, 1.2 works;
//! * unreadable or mismatched PEM files are one-line errors at start-up;
//! * an input reconnects to a restarted output; SIGINT stops a `T:` output;
//! * with `NEMEA_C_BIN` (C NEMEA's logger and traffic_repeater), interop
//!   with C libtrap's `T:` both ways.

use libtrap::Input;
use nemea_rs::{interrupt, ok_stdout, wait_output, Sandbox};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `openssl` with `args` in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl, see scripts/setup.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether openssl is there; outside CI its absence skips the test.
fn have_openssl() -> bool {
    if Command::new("openssl").arg("version").output().is_ok() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "openssl is required under CI=true (scripts/setup.sh)");
    eprintln!("skipped: no openssl to make test certificates");
    false
}

/// Makes `ca`, `server`, `client` (signed by `ca`), `ca2` and `other`
/// (a client signed by `ca2`): `NAME.key` and `NAME.crt` in the sandbox.
/// The server uses RSA, the rest EC P-256.
fn make_certs(sb: &Sandbox) {
    let dir = sb.dir.path();
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    for ca in ["ca", "ca2"] {
        let (key, crt, subj) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=tl-{ca}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
    }
    for (i, (name, ca, rsa)) in [
        ("server", "ca", true),
        ("client", "ca", false),
        ("other", "ca2", false),
    ]
    .into_iter()
    .enumerate()
    {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN=tl-{name}");
        let mut args = vec!["req"];
        if rsa {
            args.extend(["-newkey", "rsa:2048"]);
        } else {
            args.extend(ec);
        }
        args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &args);
        let (ca_crt, ca_key, serial) = (
            format!("{ca}.crt"),
            format!("{ca}.key"),
            (100 + i).to_string(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                "leaf.ext",
            ],
        );
    }
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The output spec `T:PORT:server.key:server.crt:ca.crt[EXTRA]`.
fn out_spec(port: u16, extra: &str) -> String {
    format!("T:{port}:server.key:server.crt:ca.crt{extra}")
}

/// An input spec with the key pair `who` and the CAs of `ca`.
fn in_spec(port: u16, who: &str, ca: &str) -> String {
    format!("T:127.0.0.1:{port}:{who}.key:{who}.crt:{ca}.crt")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The messages of a `.trapcap` file, in order, checked one by one
/// against `want` (another `.trapcap`): returns how many matched.
fn same_records(got: &Path, want: &Path) -> u64 {
    let open = |p: &Path| {
        let f = std::fs::File::open(p).unwrap();
        Input::from_trapcap_readers(
            &p.display().to_string(),
            vec![(
                p.display().to_string(),
                Box::new(std::io::BufReader::new(f)),
            )],
        )
    };
    let (mut g, mut w) = (open(got), open(want));
    let mut n = 0u64;
    loop {
        let a = g.recv().unwrap();
        let (a_eos, a) = (a.is_eos(), a.data.to_vec());
        let b = w.recv().unwrap();
        assert_eq!(
            a_eos,
            b.is_eos(),
            "the streams end differently after {n} records"
        );
        if a_eos {
            return n;
        }
        assert!(a == b.data, "record {n} differs");
        n += 1;
    }
}

#[test]
fn a_million_records_cross_tls_in_order() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    const N: &str = "1000000";
    ok_stdout(
        &sb.run("flow_generator", &["-n", N, "-i", "f:want.trapcap"]),
        "flow_generator to a file",
    );
    let port = free_port();
    // The reader first: it retries until the output listens.
    let reader = sb.spawn(
        "traffic_repeater",
        &[
            "-i",
            &format!("{},f:got.trapcap", in_spec(port, "client", "ca")),
        ],
    );
    let start = Instant::now();
    let sender = sb.spawn(
        "flow_generator",
        &["-n", N, "-i", &out_spec(port, ":buffer_count=10")],
    );
    let sent = wait_output(sender, Duration::from_secs(90), "flow_generator over T:");
    ok_stdout(&sent, "flow_generator over T:");
    let got = wait_output(reader, Duration::from_secs(30), "traffic_repeater T: → f:");
    ok_stdout(&got, "traffic_repeater T: → f:");
    eprintln!("1 M records over T: in {:?}", start.elapsed());
    assert_eq!(
        same_records(&sb.path("got.trapcap"), &sb.path("want.trapcap")),
        1_000_000
    );
    assert!(!stderr(&got).contains("reconnecting"), "{}", stderr(&got));
}

#[test]
fn a_client_certificate_of_another_ca_is_refused_and_the_others_served() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let port = free_port();
    let sender = sb.spawn("flow_generator", &["-n", "1000", "-i", &out_spec(port, "")]);
    nemea_rs::wait_tcp_listening(port);

    // Signed by ca2, which the output does not trust.
    let other = sb.run("logger", &["-i", &in_spec(port, "other", "ca")]);
    assert!(!other.status.success(), "a foreign client got through");
    let err = stderr(&other);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("TLS certificate verification failed")
            && err.contains("the server refused our certificate"),
        "{err}"
    );
    assert!(
        other.stdout.is_empty(),
        "records leaked to a refused client"
    );

    // Trusts ca2 only: it refuses the output's certificate.
    let distrust = sb.run("logger", &["-i", &in_spec(port, "client", "ca2")]);
    assert!(!distrust.status.success());
    let err = stderr(&distrust);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("TLS certificate verification failed: 127.0.0.1:")
            && err.contains("the certificate of the server is not signed by a CA of our CAFILE"),
        "{err}"
    );

    // The output goes on: a proper client gets everything.
    let good = sb.run("logger", &["-i", &in_spec(port, "client", "ca")]);
    assert_eq!(ok_stdout(&good, "logger").lines().count(), 1000);
    let out = wait_output(sender, Duration::from_secs(20), "flow_generator");
    ok_stdout(&out, "flow_generator");
    let log = stderr(&out);
    assert!(
        log.contains("refused: certificate verification failed: the certificate of the client is not signed by a CA of our CAFILE (unknown issuer)"),
        "{log}"
    );
    assert!(
        log.contains(
            "refused: certificate verification failed: the client refused our certificate"
        ),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_plain_tcp_client_gets_nothing_from_a_tls_output() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let port = free_port();
    let sender = sb.spawn("flow_generator", &["-n", "100", "-i", &out_spec(port, "")]);
    nemea_rs::wait_tcp_listening(port);
    // A `t:` reader sees TLS records instead of a hello, never records.
    let mut plain = sb.spawn("logger", &["-i", &format!("t:127.0.0.1:{port}")]);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        plain.try_wait().unwrap().is_none(),
        "the t: reader should still be waiting"
    );
    interrupt(&plain);
    let plain = wait_output(plain, Duration::from_secs(5), "logger t:");
    assert!(plain.stdout.is_empty());
    let good = sb.run("logger", &["-i", &in_spec(port, "client", "ca")]);
    assert_eq!(ok_stdout(&good, "logger").lines().count(), 100);
    let out = wait_output(sender, Duration::from_secs(20), "flow_generator");
    assert!(
        stderr(&out).contains("TLS handshake failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_pem_files_are_one_line_errors_at_start_up() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    std::fs::write(sb.path("junk.pem"), "no PEM here\n").unwrap();
    let port = free_port();
    for (module, spec, needle) in [
        (
            "flow_generator",
            format!("T:{port}:nosuch.key:server.crt:ca.crt"),
            "cannot read the private key (KEYFILE) nosuch.key: No such file or directory",
        ),
        (
            "flow_generator",
            format!("T:{port}:server.key:server.crt:junk.pem"),
            "cannot read the CA certificates (CAFILE) junk.pem: no PEM item",
        ),
        (
            "flow_generator",
            format!("T:{port}:client.key:server.crt:ca.crt"),
            "the key does not belong to the certificate",
        ),
        (
            "logger",
            format!("T:{port}:client.key:nosuch.crt:ca.crt"),
            "cannot read the certificate (CERTFILE) nosuch.crt: No such file or directory",
        ),
        (
            "logger",
            format!("T:{port}:other.key:client.crt:ca.crt"),
            "the key does not belong to the certificate",
        ),
        (
            "logger",
            format!("T:{port}:client.key:client.crt:."),
            "cannot read the CA certificates (CAFILE) .: Is a directory",
        ),
        (
            "logger",
            format!("T:{port}:client.key"),
            "missing parameters",
        ),
    ] {
        let mut args = vec!["-i", spec.as_str()];
        if module == "flow_generator" {
            args.extend(["-n", "1"]);
        }
        let out = sb.run(module, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{module} -i {spec}: {err}");
        assert_eq!(err.lines().count(), 1, "{module} -i {spec}: {err}");
        assert!(err.contains(needle), "{module} -i {spec}: {err}");
    }
}

#[test]
fn an_input_reconnects_and_sigint_stops_a_tls_output() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let port = free_port();
    // Its records go to a file, so that it never waits for the test.
    let reader = sb
        .cmd("logger")
        .args(["-i", &in_spec(port, "client", "ca")])
        .stdout(std::fs::File::create(sb.path("got.txt")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let endless = || {
        sb.spawn(
            "flow_generator",
            &["-n", "1000000000", "-i", &out_spec(port, "")],
        )
    };
    // A sender that dies: the reader reconnects to the next one.
    let mut first = endless();
    std::thread::sleep(Duration::from_millis(1500));
    first.kill().unwrap();
    let _ = first.wait();
    // The next one is stopped by SIGINT, within a second. Meanwhile its
    // service interface shows the T: output with its one client.
    let second = endless();
    let service = sb.path(&format!("trap-service_{}.sock", second.id()));
    let start = Instant::now();
    let stats = loop {
        let json = libtrap::service::query(&service).unwrap_or_default();
        if json.contains("\"num_clients\": 1") || start.elapsed() > Duration::from_secs(10) {
            break json;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: serde_json::Value = serde_json::from_str(&stats).expect("service JSON");
    let out = &v["out"][0];
    assert_eq!(out["ifc_type"], u32::from(b'T'), "{stats}");
    assert_eq!(out["num_clients"], 1, "{stats}");
    assert_eq!(out["ifc_id"], port.to_string(), "{stats}");
    std::thread::sleep(Duration::from_millis(1000));
    interrupt(&second);
    let stopped = Instant::now();
    let second = wait_output(second, Duration::from_secs(5), "flow_generator (SIGINT)");
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "SIGINT took {:?}",
        stopped.elapsed()
    );
    assert!(second.status.success(), "{}", stderr(&second));
    // Its end of stream reaches the reader unless the reader lagged behind
    // at the signal (then, as on t:, it is dropped and the reader waits).
    let start = Instant::now();
    let mut reader = reader;
    while reader.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if reader.try_wait().unwrap().is_none() {
        interrupt(&reader);
    }
    let got = wait_output(reader, Duration::from_secs(10), "logger");
    ok_stdout(&got, "logger");
    let lines = std::fs::read_to_string(sb.path("got.txt"))
        .unwrap()
        .lines()
        .count();
    assert!(lines > 1000, "only {lines} records");
    assert!(stderr(&got).contains("reconnecting"), "{}", stderr(&got));
}

#[test]
fn autoflush_sends_a_partial_container_over_tls() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let (feed, port) = (free_port(), free_port());
    // traffic_repeater holds 5 records from the feed in a partial container
    // until its autoflush (200 ms) sends them over T: (the feed stays open,
    // so no end of stream or close flushes them).
    let repeater = sb.spawn(
        "traffic_repeater",
        &[
            "-i",
            &format!("t:127.0.0.1:{feed},{}", out_spec(port, ":autoflush=200000")),
        ],
    );
    let mut reader = sb.spawn("logger", &["-i", &in_spec(port, "client", "ca")]);
    let stdout = reader.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut trap = libtrap::Trap::init(&format!("t:127.0.0.1:{feed}"), Some(0), Some(1)).unwrap();
    let out = &mut trap.outputs()[0];
    out.set_format(libtrap::DataFormat::UniRec("uint32 X".into()))
        .unwrap();
    for i in 0..5u32 {
        out.send(&i.to_le_bytes()).unwrap();
    }
    out.flush().unwrap();
    let start = Instant::now();
    for i in 0..5 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("record {i} did not arrive"))
            .unwrap();
        assert_eq!(line, i.to_string());
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    interrupt(&reader);
    let _ = wait_output(reader, Duration::from_secs(5), "logger");
    interrupt(&repeater);
    let _ = wait_output(repeater, Duration::from_secs(5), "traffic_repeater");
    drop(trap);
}

/// The raw bytes a `t:` output sends one client (hello and containers).
fn raw_tcp_stream(sb: &Sandbox, records: &str) -> Vec<u8> {
    use std::io::Read;
    let port = free_port();
    let sender = sb.spawn(
        "flow_generator",
        &["-n", records, "-i", &format!("t:127.0.0.1:{port}")],
    );
    // Connected before the output had its format, a client gets a hello
    // without one and is let go: then connect again.
    let start = Instant::now();
    let bytes = loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no stream from the t: output"
        );
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        if bytes.len() > 100 {
            break bytes;
        }
    };
    ok_stdout(
        &wait_output(sender, Duration::from_secs(10), "flow_generator t:"),
        "flow_generator t:",
    );
    bytes
}

/// `openssl s_client` (OpenSSL, as C libtrap uses) against our output,
/// with `args` after the common ones: its stdout, stderr and success.
fn s_client(sb: &Sandbox, port: u16, args: &[&str]) -> Output {
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec![
        "s_client",
        "-connect",
        &addr,
        "-cert",
        "client.crt",
        "-key",
        "client.key",
        "-CAfile",
        "ca.crt",
        "-verify_return_error",
        "-brief",
        "-ign_eof",
    ];
    all.extend(args);
    let child = Command::new("openssl")
        .current_dir(sb.dir.path())
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(20), "openssl s_client")
}

/// `s_client` until it gets a stream: one that connected before the
/// output had its format got a hello without one and was let go.
fn s_client_stream(sb: &Sandbox, port: u16, args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let got = s_client(sb, port, args);
        if !got.status.success() || got.stdout.len() > 100 {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no stream over T:"
        );
    }
}

#[test]
fn openssl_peers_get_exactly_the_tcp_stream_both_ways() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let plain = raw_tcp_stream(&sb, "150");

    // OpenSSL client ← our output: after the handshake, the t: bytes.
    let port = free_port();
    let sender = sb.spawn("flow_generator", &["-n", "150", "-i", &out_spec(port, "")]);
    nemea_rs::wait_tcp_listening(port);
    let got = s_client_stream(&sb, port, &[]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(stderr(&got).contains("TLSv1.3"), "{}", stderr(&got));
    assert!(
        got.stdout == plain,
        "the T: stream differs from the t: stream"
    );
    ok_stdout(
        &wait_output(sender, Duration::from_secs(10), "flow_generator"),
        "flow_generator",
    );

    // Our input ← OpenSSL server sending those bytes; it verifies our
    // certificate (-Verify) and we verify its. s_server sends what one read
    // of its stdin gives (16 KiB; it may drop the rest: the stream is
    // 10 KB) and closes at the end of its input, so that stays open until
    // our reader is done.
    let port = free_port();
    let mut server = Command::new("openssl")
        .current_dir(sb.dir.path())
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.crt",
            "-key",
            "server.key",
            "-CAfile",
            "ca.crt",
            "-Verify",
            "1",
            "-verify_return_error",
            "-naccept",
            "1",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = server.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        feed.write_all(&plain).unwrap();
        feed
    });
    let ours = sb.run("logger", &["-i", &in_spec(port, "client", "ca")]);
    drop(writer.join().unwrap());
    let served = wait_output(server, Duration::from_secs(10), "openssl s_server");
    assert!(served.status.success(), "{}", stderr(&served));
    ok_stdout(
        &sb.run("flow_generator", &["-n", "150", "-i", "f:want.trapcap"]),
        "flow_generator f:",
    );
    let want = ok_stdout(&sb.run("logger", &["-i", "f:want.trapcap"]), "logger f:");
    let got = ok_stdout(&ours, "logger T: ← s_server");
    assert_eq!(got.lines().count(), 150);
    assert!(got == want, "the records differ");
    assert!(ours.stderr.is_empty(), "{}", stderr(&ours));
}

#[test]
fn tls_below_1_2_is_refused_and_1_2_works() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    let plain = raw_tcp_stream(&sb, "50");
    let port = free_port();
    let sender = sb.spawn("flow_generator", &["-n", "50", "-i", &out_spec(port, "")]);
    nemea_rs::wait_tcp_listening(port);
    let old = s_client(&sb, port, &["-tls1_1"]);
    assert!(!old.status.success(), "TLS 1.1 was accepted");
    assert!(old.stdout.is_empty());
    let v12 = s_client_stream(&sb, port, &["-tls1_2"]);
    assert!(v12.status.success(), "{}", stderr(&v12));
    assert!(stderr(&v12).contains("TLSv1.2"), "{}", stderr(&v12));
    assert!(v12.stdout == plain, "the TLS 1.2 stream differs from t:");
    let out = wait_output(sender, Duration::from_secs(10), "flow_generator");
    ok_stdout(&out, "flow_generator");
    assert!(
        stderr(&out).contains("TLS handshake failed"),
        "{}",
        stderr(&out)
    );
}

/// C NEMEA's binaries (`logger`, `traffic_repeater`) built with libtrap's
/// TLS, from `NEMEA_C_BIN`; skipped with a line when it is not set.
fn c_bin(name: &str) -> Option<std::path::PathBuf> {
    let Some(dir) = std::env::var_os("NEMEA_C_BIN") else {
        eprintln!("skipped: NEMEA_C_BIN (C NEMEA's binaries) is not set");
        return None;
    };
    let p = Path::new(&dir).join(name);
    assert!(p.exists(), "{} is missing", p.display());
    Some(p)
}

#[test]
fn interoperates_with_c_libtrap_tls_both_ways() {
    let (Some(c_logger), Some(c_repeater)) = (c_bin("logger"), c_bin("traffic_repeater")) else {
        return;
    };
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    make_certs(&sb);
    ok_stdout(
        &sb.run("flow_generator", &["-n", "20000", "-i", "f:want.trapcap"]),
        "flow_generator",
    );
    let run_c = |bin: &Path, args: &[&str]| {
        let child = Command::new(bin)
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("C module");
        wait_output(child, Duration::from_secs(60), &bin.display().to_string())
    };
    // Ours → C: our T: output, C logger's T: input. A C client with a
    // certificate of another CA is refused (C's logger then ends without
    // a word or a record, as libtrap's T: input does on any failed connect).
    let port = free_port();
    let sender = sb.spawn(
        "traffic_repeater",
        &["-i", &format!("f:want.trapcap,{}", out_spec(port, ""))],
    );
    nemea_rs::wait_tcp_listening(port);
    let refused = run_c(&c_logger, &["-i", &in_spec(port, "other", "ca")]);
    assert!(refused.stdout.is_empty(), "records for a refused C client");
    let got = run_c(&c_logger, &["-i", &in_spec(port, "client", "ca")]);
    assert_eq!(ok_stdout(&got, "C logger").lines().count(), 20_000);
    let sent = wait_output(sender, Duration::from_secs(30), "traffic_repeater");
    ok_stdout(&sent, "traffic_repeater");
    assert!(
        stderr(&sent).contains("refused: certificate verification failed: the certificate of the client is not signed by a CA of our CAFILE"),
        "{}",
        stderr(&sent)
    );

    // C → ours: C traffic_repeater's T: output, our inputs: refused by it,
    // refusing it, then one that copies everything to a file.
    let port = free_port();
    let c_sender = Command::new(&c_repeater)
        .current_dir(sb.dir.path())
        .env("TRAP_SOCKET_DIR", sb.dir.path())
        .args(["-i", &format!("f:want.trapcap,{}", out_spec(port, ""))])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("C traffic_repeater");
    nemea_rs::wait_tcp_listening(port);
    let other = sb.run("logger", &["-i", &in_spec(port, "other", "ca")]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("the server refused our certificate"),
        "{}",
        stderr(&other)
    );
    let distrust = sb.run("logger", &["-i", &in_spec(port, "client", "ca2")]);
    assert_eq!(distrust.status.code(), Some(1));
    assert!(
        stderr(&distrust)
            .contains("the certificate of the server is not signed by a CA of our CAFILE"),
        "{}",
        stderr(&distrust)
    );
    let got = sb.run(
        "traffic_repeater",
        &[
            "-i",
            &format!("{},f:got.trapcap", in_spec(port, "client", "ca")),
        ],
    );
    ok_stdout(&got, "traffic_repeater T: ← C");
    let sent = wait_output(c_sender, Duration::from_secs(30), "C traffic_repeater");
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(
        same_records(&sb.path("got.trapcap"), &sb.path("want.trapcap")),
        20_000
    );
}
