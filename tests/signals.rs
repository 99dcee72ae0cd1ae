//! SIGINT stops a module within a second whatever it is doing, also in the
//! middle of a long `f:` input: it exits 0, prints no partial line, and its
//! output is a valid file that ends with the end-of-stream message.

use libtrap::{Trap, TrapError};
use nemea_rs::{interrupt, wait_output, Sandbox};
use std::fs::File;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// Records in the generated file; the inputs name it several times over, so
/// that no module reaches the end within the test, even in a release build.
const RECORDS: u64 = 2_000_000;
const REPEAT: usize = 20;

/// One test at a time: each writes hundreds of megabytes and times its
/// module, which other tests of this file would slow down.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Generates the big file (without an end of stream: `traffic_repeater -n`
/// takes it out, so that the reader goes on to the next name) and returns
/// the `f:` input naming it REPEAT times.
fn big_input(sb: &Sandbox, tcp_flags: bool) -> String {
    let n = RECORDS.to_string();
    let mut args = vec!["-n", &n, "-i", "f:gen.trapcap"];
    if tcp_flags {
        args.push("--tcp-flags");
    }
    assert!(sb.run("flow_generator", &args).status.success());
    let out = sb.run(
        "traffic_repeater",
        &["-n", "-i", "f:gen.trapcap,f:big.trapcap"],
    );
    assert!(out.status.success(), "traffic_repeater -n failed");
    std::fs::remove_file(sb.path("gen.trapcap")).unwrap();
    format!("f:{}", vec!["big.trapcap"; REPEAT].join(" "))
}

/// Starts `module` with stdout into the sandbox file `stdout`.
fn start(sb: &Sandbox, module: &str, args: &[&str], stdout: &str) -> Child {
    sb.cmd(module)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(sb.path(stdout)).expect("stdout file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn module")
}

/// Waits until `file` holds more than `bytes` (the module is well under
/// way), then 200 ms more.
fn wait_for_output(file: &Path, bytes: u64) {
    let start = Instant::now();
    while std::fs::metadata(file).map_or(0, |m| m.len()) <= bytes {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never grew past {bytes} bytes",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// SIGINT while the module is still at work, then it must be gone within
/// 1 s with exit status 0.
fn interrupt_and_wait(child: Child, what: &str) -> Output {
    assert!(running(&child), "{what} ended before the signal");
    interrupt(&child);
    let start = Instant::now();
    let out = wait_output(child, Duration::from_secs(20), what);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(1),
        "{what} took {took:?} to stop after SIGINT; stderr: {err}"
    );
    assert!(
        out.status.success(),
        "{what} exited with {} after SIGINT: {err}",
        out.status
    );
    out
}

/// The messages of a `.trapcap` file: how many records, and whether the
/// file's last message is the 1-byte end of stream (the reader's own
/// end-of-file message is empty).
fn read_trapcap(path: &Path) -> (u64, bool) {
    let mut trap = Trap::init(&format!("f:{}", path.display()), Some(1), Some(0)).unwrap();
    let input = &mut trap.inputs()[0];
    let mut records = 0;
    loop {
        match input.recv() {
            Ok(m) if m.data.is_empty() => return (records, false),
            Ok(m) if m.data.len() == 1 => {
                let after = input.recv().map(|m| m.data.len());
                assert!(matches!(after, Ok(0)), "a message after the EOS");
                return (records, true);
            }
            Ok(_) => records += 1,
            Err(TrapError::Timeout) => {}
            Err(e) => panic!("{} is not a valid file: {e}", path.display()),
        }
    }
}

#[test]
fn logger_stops_on_sigint_in_a_long_file() {
    let _one = serial();
    let sb = Sandbox::new();
    let input = big_input(&sb, false);
    let child = start(&sb, "logger", &["-i", &input], "out.csv");
    wait_for_output(&sb.path("out.csv"), 1 << 20);
    interrupt_and_wait(child, "logger");
    let text = std::fs::read_to_string(sb.path("out.csv")).unwrap();
    let lines = text.lines().count() as u64;
    assert!(
        lines > 0 && lines < RECORDS * REPEAT as u64,
        "stopped mid-way: {lines} lines"
    );
    assert!(text.ends_with('\n'), "the last line is cut");
    // Every line is a whole record: 9 fields.
    let bad = text.lines().find(|l| l.split(',').count() != 9);
    assert_eq!(bad, None, "a partial line");
}

#[test]
fn traffic_repeater_stops_on_sigint_and_ends_its_file_with_eos() {
    let _one = serial();
    let sb = Sandbox::new();
    let input = big_input(&sb, false);
    let child = start(
        &sb,
        "traffic_repeater",
        &["-i", &format!("{input},f:rep.trapcap")],
        "stdout.txt",
    );
    wait_for_output(&sb.path("rep.trapcap"), 4 << 20);
    interrupt_and_wait(child, "traffic_repeater");
    let (records, eos) = read_trapcap(&sb.path("rep.trapcap"));
    assert!(
        records > 0 && records < RECORDS * REPEAT as u64,
        "stopped mid-way: {records} records"
    );
    assert!(eos, "the file does not end with the end-of-stream message");
    // logger reads it to the end, cleanly.
    let out = sb.run("logger", &["-i", "f:rep.trapcap"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as u64,
        records
    );
}

#[test]
fn a_detector_stops_on_sigint_in_a_long_file() {
    let _one = serial();
    let sb = Sandbox::new();
    let input = big_input(&sb, true);
    let child = start(
        &sb,
        "vportscan_detector",
        &["-i", &format!("{input},f:alerts.trapcap")],
        "stdout.txt",
    );
    // The detector reads for a while (its output appears only at the end).
    std::thread::sleep(Duration::from_millis(800));
    interrupt_and_wait(child, "vportscan_detector");
    let (_, eos) = read_trapcap(&sb.path("alerts.trapcap"));
    assert!(eos, "the alerts do not end with the end-of-stream message");
}

/// True while the child has not exited (it is not waited for yet, so an
/// exited child is a zombie).
fn running(child: &Child) -> bool {
    Path::new(&format!("/proc/{}", child.id())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn flow_generator_stops_on_sigint_and_ends_its_file_with_eos() {
    let _one = serial();
    let sb = Sandbox::new();
    let child = start(
        &sb,
        "flow_generator",
        &["-n", "1000000000", "-i", "f:gen.trapcap"],
        "stdout.txt",
    );
    wait_for_output(&sb.path("gen.trapcap"), 4 << 20);
    interrupt_and_wait(child, "flow_generator");
    let (records, eos) = read_trapcap(&sb.path("gen.trapcap"));
    assert!(records > 0 && records < 1_000_000_000);
    assert!(eos, "the file does not end with the end-of-stream message");
}

#[test]
fn logreplay_stops_on_sigint_in_a_long_csv() {
    let _one = serial();
    let sb = Sandbox::new();
    let mut csv = String::from("uint32 A,uint16 B\n");
    for i in 0..3_000_000u32 {
        use std::fmt::Write;
        let _ = writeln!(csv, "{i},{}", i % 65536);
    }
    std::fs::write(sb.path("big.csv"), csv).unwrap();
    let child = start(
        &sb,
        "logreplay",
        &["-f", "big.csv", "-i", "f:replay.trapcap"],
        "stdout.txt",
    );
    wait_for_output(&sb.path("replay.trapcap"), 1 << 20);
    interrupt_and_wait(child, "logreplay");
    let (records, eos) = read_trapcap(&sb.path("replay.trapcap"));
    assert!(
        records > 0 && records < 3_000_000,
        "stopped mid-way: {records}"
    );
    assert!(eos, "the file does not end with the end-of-stream message");
}
