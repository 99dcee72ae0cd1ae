//! unirecfilter in real pipelines: logreplay → unirecfilter → logger over
//! files and unix sockets, each test in its own TRAP_SOCKET_DIR. The filter
//! table is the crate's (`modules/unirecfilter/tests/data/`), so the unit
//! test and the binaries must agree on every line of it.

use nemea_rs::{interrupt, ok_stdout, repo_root, wait_output, Sandbox};
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn data(name: &str) -> String {
    repo_root()
        .join("modules/unirecfilter/tests/data")
        .join(name)
        .display()
        .to_string()
}

/// (expected IDs or `Err(column)`, filter) of every line of the table.
fn table() -> Vec<(Result<Vec<u32>, usize>, String)> {
    std::fs::read_to_string(data("filter_table.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (ids, expr) = l.split_once(':').unwrap();
            let ids = ids.trim();
            let want = match ids.strip_prefix("error ") {
                Some(col) => Err(col.parse().unwrap()),
                None if ids == "-" => Ok(Vec::new()),
                None => Ok(ids.split_whitespace().map(|i| i.parse().unwrap()).collect()),
            };
            (want, expr.trim().to_string())
        })
        .collect()
}

/// The ID column of logger -t output.
fn ids(logger_text: &str) -> Vec<u32> {
    let mut lines = logger_text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let col = header
        .split(',')
        .position(|c| c == "uint32 ID")
        .expect("an ID column");
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

fn replay_to_file(sb: &Sandbox) {
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-f", &data("records.csv"), "-i", "f:in.trapcap"],
        ),
        "logreplay",
    );
}

#[test]
fn the_filter_table_through_the_binaries() {
    let sb = Sandbox::new();
    replay_to_file(&sb);
    let cases = table();
    let (good, bad): (Vec<_>, Vec<_>) = cases.iter().partition(|(w, _)| w.is_ok());
    // Up to 32 outputs per run, one filter file item each.
    for chunk in good.chunks(32) {
        let items: String = chunk.iter().map(|(_, e)| format!(":{e};\n")).collect();
        std::fs::write(sb.path("filters.txt"), items).unwrap();
        let outs: Vec<String> = (0..chunk.len())
            .map(|i| format!("f:out{i}.trapcap"))
            .collect();
        let spec = format!("f:in.trapcap,{}", outs.join(","));
        ok_stdout(
            &sb.run("unirecfilter", &["-i", &spec, "-f", "filters.txt"]),
            "unirecfilter",
        );
        for (i, (want, expr)) in chunk.iter().enumerate() {
            let text = ok_stdout(
                &sb.run("logger", &["-t", "-i", &format!("f:out{i}.trapcap")]),
                "logger",
            );
            assert_eq!(Ok(ids(&text)), *want, "{expr}");
        }
    }
    for (want, expr) in bad {
        let out = sb.run("unirecfilter", &["-i", "f:in.trapcap,b:", "-F", expr]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expr}: accepted");
        let col = want.as_ref().unwrap_err();
        assert!(
            err.starts_with(&format!("unirecfilter: error: -F: column {col}: "))
                && err.lines().count() == 1,
            "{expr}: {err}"
        );
    }
}

#[test]
fn projection_with_defaults_over_unix_sockets() {
    let sb = Sandbox::new();
    let logger = sb.spawn("logger", &["-t", "-i", "u:uf_out"]);
    let filter = sb.spawn(
        "unirecfilter",
        &[
            "-i",
            "u:uf_in,u:uf_out",
            "-O",
            "uint32 ID,ipaddr SRC_IP,uint16 DST_PORT,string NOTE=\"a, \\\"b\\\"\",uint8 MISSING=7",
            "-F",
            "PROTOCOL == TCP && BYTES > 1000",
        ],
    );
    sb.wait_socket("uf_out");
    ok_stdout(
        &sb.run("logreplay", &["-f", &data("records.csv"), "-i", "u:uf_in"]),
        "logreplay",
    );
    let got = ok_stdout(
        &wait_output(logger, Duration::from_secs(30), "logger"),
        "logger",
    );
    ok_stdout(
        &wait_output(filter, Duration::from_secs(30), "unirecfilter"),
        "unirecfilter",
    );
    assert_eq!(
        got,
        "ipaddr SRC_IP,uint32 ID,uint16 DST_PORT,uint8 MISSING,string NOTE\n\
         10.0.0.1,1,80,7,\"a, \"\"b\"\"\"\n\
         192.168.1.10,2,51000,7,\"a, \"\"b\"\"\"\n\
         10.0.0.200,6,22,7,\"a, \"\"b\"\"\"\n"
    );
}

/// Lines of a child's stderr as they come.
fn stderr_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_filter_file_with_two_outputs_is_read_again_on_sigusr1() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("filters.txt"),
        "# web\n:DST_PORT == 80;\n# DNS and the like, only the ID\nuint32 ID: PROTOCOL == UDP;\n",
    )
    .unwrap();
    let la = sb
        .cmd("logger")
        .args(["-i", "u:uf_a", "-w", "a.csv"])
        .spawn()
        .unwrap();
    let lb = sb
        .cmd("logger")
        .args(["-i", "u:uf_b", "-w", "b.csv"])
        .spawn()
        .unwrap();
    let mut filter = sb
        .cmd("unirecfilter")
        .args(["-i", "u:uf_in,u:uf_a,u:uf_b", "-f", "filters.txt"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let notes = stderr_lines(&mut filter);
    sb.wait_socket("uf_a");
    sb.wait_socket("uf_b");
    let replay = |eos: bool| {
        let mut args = vec![
            "-f".to_string(),
            data("records.csv"),
            "-i".into(),
            "u:uf_in".into(),
        ];
        if !eos {
            args.insert(0, "-n".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok_stdout(&sb.run("logreplay", &args), "logreplay");
    };
    replay(false);
    let read = |f: &str| std::fs::read_to_string(sb.path(f)).unwrap_or_default();
    wait_for("the first records", || {
        read("a.csv").lines().count() == 1 && read("b.csv").lines().count() == 2
    });
    assert!(
        read("a.csv").starts_with("192.168.1.10,10.0.0.1,"),
        "{}",
        read("a.csv")
    );
    assert_eq!(read("b.csv"), "3\n5\n");

    std::fs::write(
        sb.path("filters.txt"),
        ":DST_PORT == 443;\n:KIND == \"b\";\n",
    )
    .unwrap();
    Command::new("kill")
        .args(["-USR1", &filter.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    loop {
        let line = notes
            .recv_timeout(Duration::from_secs(10))
            .expect("a reload note");
        if line.contains("filters read again") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reload: {line}"
        );
    }
    replay(true);
    ok_stdout(
        &wait_output(la, Duration::from_secs(30), "logger a"),
        "logger a",
    );
    ok_stdout(
        &wait_output(lb, Duration::from_secs(30), "logger b"),
        "logger b",
    );
    assert!(wait_output(filter, Duration::from_secs(30), "unirecfilter")
        .status
        .success());
    let a = read("a.csv");
    assert_eq!(a.lines().count(), 2, "{a}");
    assert!(
        a.lines()
            .nth(1)
            .unwrap()
            .starts_with("255.255.255.255,0.0.0.0,"),
        "{a}"
    );
    // Output b went from `uint32 ID` to the input's template.
    let b_text = read("b.csv");
    let b: Vec<&str> = b_text.lines().collect();
    assert_eq!(b.len(), 4, "{b:?}");
    assert_eq!(&b[..2], ["3", "5"]);
    assert!(
        b[2].starts_with("10.0.0.1,192.168.1.10,") && b[3].starts_with("255.255.255.255,"),
        "{b:?}"
    );
}

#[test]
fn cut_stops_after_n_records_and_sends_end_of_stream() {
    let sb = Sandbox::new();
    replay_to_file(&sb);
    ok_stdout(
        &sb.run(
            "unirecfilter",
            &[
                "-i",
                "f:in.trapcap,f:out.trapcap",
                "-c",
                "3",
                "-F",
                "SRC_PORT > 100",
            ],
        ),
        "unirecfilter",
    );
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", "f:out.trapcap"]), "logger");
    assert_eq!(ids(&text), [1, 3]);
}

#[test]
fn sigint_ends_with_end_of_stream_on_every_output() {
    let sb = Sandbox::new();
    let logger = sb.spawn("logger", &["-i", "u:uf_sig"]);
    let filter = sb.spawn(
        "unirecfilter",
        &["-i", "u:uf_sig_in,u:uf_sig", "-O", "uint32 ID"],
    );
    sb.wait_socket("uf_sig");
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&filter);
    let f = wait_output(filter, Duration::from_secs(5), "unirecfilter");
    assert!(f.status.success(), "{}", String::from_utf8_lossy(&f.stderr));
    // The explicit template was announced at start, so the end of stream
    // reaches the logger and ends it.
    let l = wait_output(logger, Duration::from_secs(5), "logger");
    assert!(l.status.success());
}

#[test]
fn bad_usage_is_one_line_naming_the_fix() {
    let sb = Sandbox::new();
    replay_to_file(&sb);
    let err = |args: &[&str]| {
        let o = sb.run("unirecfilter", args);
        assert!(!o.status.success(), "{args:?} accepted");
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    };
    assert!(err(&["-i", "f:in.trapcap,b:,b:", "-F", "true"]).contains("-f FILE"));
    assert!(
        err(&["-i", "f:in.trapcap,b:", "-F", "true", "-f", "x"]).contains("cannot be used with")
    );
    assert!(err(&["-i", "f:in.trapcap,b:", "-f", "missing.txt"])
        .contains("cannot read the filter file missing.txt"));
    std::fs::write(sb.path("one.txt"), ":true;").unwrap();
    assert!(err(&["-i", "f:in.trapcap,b:,b:", "-f", "one.txt"])
        .contains("1 item(s) (TEMPLATE:FILTER;) for 2 output"));
    std::fs::write(sb.path("bad.txt"), ":true;\n:SRC_PORT ==\n  ;").unwrap();
    assert!(err(&["-i", "f:in.trapcap,b:,b:", "-f", "bad.txt"])
        .contains("bad.txt:3:3: the filter ends"));
    assert!(err(&["-i", "f:in.trapcap,b:", "-O", "uint16 ID"])
        .contains("ID is uint16 in the output template but uint32 in the input"));
    assert!(err(&["-i", "f:in.trapcap,b:", "-c", "0"]).contains("-c"));
}
