//! Bad input gets a clear one-line error and a non-zero exit, never a panic,
//! and the complete records before the damage are still delivered.

use nemea_rs::{ok_stdout, Sandbox};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected a failure, stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
}

fn source(sb: &Sandbox, n: u32) -> Vec<u8> {
    ok_stdout(
        &sb.run(
            "flow_generator",
            &["-n", &n.to_string(), "-i", "f:good.trapcap"],
        ),
        "flow_generator",
    );
    std::fs::read(sb.path("good.trapcap")).unwrap()
}

#[test]
fn truncated_trapcap_prints_complete_records_then_fails() {
    let sb = Sandbox::new();
    let bytes = source(&sb, 3000);
    let all = ok_stdout(&sb.run("logger", &["-i", "f:good.trapcap"]), "logger");
    // Cut inside the second block, in the middle of a record.
    let cut = bytes.len() - 1000;
    std::fs::write(sb.path("cut.trapcap"), &bytes[..cut]).unwrap();
    let o = sb.run("logger", &["-i", "f:cut.trapcap"]);
    assert_clean_failure(&o, "truncated");
    let printed = String::from_utf8_lossy(&o.stdout);
    let n = printed.lines().count();
    let record = 67 + 2;
    let expected = 3000 - 1000 / record - 1;
    assert!(
        n >= expected && n < 3000,
        "printed {n} lines, expected about {expected}"
    );
    assert!(
        all.starts_with(&*printed),
        "the printed lines are the file's first records"
    );
    assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
}

#[test]
fn garbage_and_empty_files_are_rejected() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("garbage.trapcap"),
        b"this is not a trapcap file at all\n",
    )
    .unwrap();
    assert_clean_failure(
        &sb.run("logger", &["-i", "f:garbage.trapcap"]),
        "not TRAP data",
    );
    std::fs::write(sb.path("empty.trapcap"), b"").unwrap();
    assert_clean_failure(&sb.run("logger", &["-i", "f:empty.trapcap"]), "empty");
    assert_clean_failure(
        &sb.run("logger", &["-i", "f:missing.trapcap"]),
        "missing.trapcap",
    );
    // A valid hello followed by a block header announcing 3 GB.
    let mut bad = vec![2, 0, 0, 0, 0, 0, 0, 8];
    bad.extend_from_slice(b"uint32 A");
    bad.extend_from_slice(&[0xc0, 0, 0, 0, 1, 2, 3]);
    std::fs::write(sb.path("huge.trapcap"), &bad).unwrap();
    assert_clean_failure(&sb.run("logger", &["-i", "f:huge.trapcap"]), "corrupt");
}

#[test]
fn corrupt_record_inside_a_block_is_reported() {
    let sb = Sandbox::new();
    let mut bytes = source(&sb, 10);
    // Make the first message claim to be longer than its block.
    let hello = 8 + u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    bytes[hello + 4] = 0xff;
    std::fs::write(sb.path("bad.trapcap"), &bytes).unwrap();
    assert_clean_failure(&sb.run("logger", &["-i", "f:bad.trapcap"]), "corrupt");
}

#[test]
fn malformed_csv_lines_are_named() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("x.csv"),
        "uint16 PORT,ipaddr IP\n80,10.0.0.1\n99999,10.0.0.2\n53,not-an-ip\n443,::1\n",
    )
    .unwrap();
    let o = sb.run("logreplay", &["-f", "x.csv", "-i", "f:x.trapcap"]);
    assert_clean_failure(
        &o,
        "x.csv:3: column 1 (uint16 PORT): `99999` is not a valid uint16",
    );
    assert!(
        stderr(&o).contains("x.csv:4: column 2 (ipaddr IP)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("2 malformed line(s) skipped"));
    // The good lines were sent, then end of stream.
    let text = ok_stdout(&sb.run("logger", &["-i", "f:x.trapcap"]), "logger");
    assert_eq!(text, "10.0.0.1,80\n::1,443\n");
    std::fs::write(sb.path("h.csv"), "uint16 PORT,uint99 X\n1,2\n").unwrap();
    assert_clean_failure(
        &sb.run("logreplay", &["-f", "h.csv", "-i", "f:h.trapcap"]),
        "h.csv:1: bad header: unknown UniRec type `uint99`",
    );
    assert_clean_failure(
        &sb.run("logreplay", &["-f", "nope.csv", "-i", "f:h.trapcap"]),
        "cannot open nope.csv",
    );
}

#[test]
fn wrong_interface_specifiers() {
    let sb = Sandbox::new();
    assert_clean_failure(
        &sb.run("logger", &["-i", "x:foo"]),
        "unknown interface type `x`",
    );
    assert_clean_failure(&sb.run("logger", &["-i", "u:"]), "missing socket name");
    assert_clean_failure(
        &sb.run("logger", &["-i", "u:a,u:b"]),
        "needs 1 input and 0 outputs",
    );
    assert_clean_failure(
        &sb.run("traffic_repeater", &["-i", "u:a"]),
        "needs 1 input and 1 output",
    );
    assert_clean_failure(
        &sb.run("traffic_repeater", &["-i", "u:a,f:x:size=big"]),
        "bad size",
    );
    assert_clean_failure(
        &sb.run("logger", &["-i", "u:a:timeout=SOON"]),
        "bad timeout",
    );
    let o = sb.run("logger", &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("-i <IFC_SPEC>"), "{}", stderr(&o));
}

#[test]
fn every_binary_documents_its_options() {
    let sb = Sandbox::new();
    for m in [
        "logger",
        "logreplay",
        "traffic_repeater",
        "zwave_generator",
        "flow_generator",
    ] {
        let help = ok_stdout(&sb.run(m, &["--help"]), m);
        assert!(help.contains("-i <IFC_SPEC>"), "{m}: {help}");
        let trap = ok_stdout(&sb.run(m, &["-h", "trap"]), m);
        assert!(trap.contains("timeout=WAIT|NO_WAIT|HALF_WAIT"), "{m}");
    }
}
