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

/// Offset of the first message of the first block (after hello and block header).
fn first_message(bytes: &[u8]) -> usize {
    8 + u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 4
}

#[test]
fn an_end_of_stream_inside_a_trapcap_is_corruption() {
    let sb = Sandbox::new();
    let bytes = source(&sb, 3000);
    let at = first_message(&bytes);
    for len in [0u8, 1] {
        let mut bad = bytes.clone();
        // The first record claims 0 or 1 bytes: an end of stream in mid-block.
        bad[at] = 0;
        bad[at + 1] = len;
        std::fs::write(sb.path("eos.trapcap"), &bad).unwrap();
        let o = sb.run("logger", &["-i", "f:eos.trapcap"]);
        assert_clean_failure(
            &o,
            &format!(
                "logger: error: f:eos.trapcap: eos.trapcap: end-of-stream message at byte {at}, \
                 but its block goes on (corrupt file)"
            ),
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
    // The last record of the first block made an end of stream: more blocks follow.
    let len = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
    let (mut pos, mut last) = (at, at);
    while pos < at + len {
        last = pos;
        pos += 2 + u16::from_be_bytes([bytes[pos], bytes[pos + 1]]) as usize;
    }
    let mut bad = bytes[..at + len].to_vec();
    bad.truncate(last);
    bad.extend_from_slice(&[0, 1, 0]);
    let new_len = (bad.len() - at) as u32;
    bad[at - 4..at].copy_from_slice(&new_len.to_be_bytes());
    bad.extend_from_slice(&bytes[at + len..]);
    std::fs::write(sb.path("eos2.trapcap"), &bad).unwrap();
    assert_clean_failure(
        &sb.run("logger", &["-i", "f:eos2.trapcap"]),
        &format!("eos2.trapcap: end-of-stream message at byte {last}, but the file goes on"),
    );
}

#[test]
fn several_files_ending_in_end_of_stream_read_as_one_stream() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("a.csv"), "uint32 A\n1\n2\n").unwrap();
    std::fs::write(sb.path("b.csv"), "uint32 A\n3\n").unwrap();
    // Two runs in append mode: run.trapcap.00000 and .00001, each with its end of stream.
    for csv in ["a.csv", "b.csv"] {
        ok_stdout(
            &sb.run("logreplay", &["-f", csv, "-i", "f:run.trapcap:a"]),
            "logreplay",
        );
    }
    let o = sb.run("logger", &["-i", "f:run.trapcap.*"]);
    assert_eq!(ok_stdout(&o, "logger"), "1\n2\n3\n");
    assert_eq!(stderr(&o), "");
    let o = sb.run("traffic_repeater", &["-i", "f:run.trapcap.*,f:all.trapcap"]);
    ok_stdout(&o, "traffic_repeater");
    let text = ok_stdout(&sb.run("logger", &["-i", "f:all.trapcap"]), "logger");
    assert_eq!(text, "1\n2\n3\n");
}

#[test]
fn file_sizes_and_times_that_overflow_are_refused() {
    let sb = Sandbox::new();
    source(&sb, 10);
    for (param, needle) in [
        // 2^44 MB + 1 wrapped to 1 MiB, 2^44 MB to 0 (never rotating).
        ("size=17592186044417", "at most 16777216 megabytes"),
        ("size=17592186044416", "at most 16777216 megabytes"),
        ("time=99999999999999999", "at most 525600 minutes"),
        ("size=-1", "bad size `-1`"),
    ] {
        let spec = format!("f:good.trapcap,f:o.trapcap:{param}");
        let o = sb.run("traffic_repeater", &["-i", &spec]);
        assert_clean_failure(&o, needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
    let made: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("o.trapcap"))
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

#[test]
fn a_csv_header_naming_a_field_twice_is_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("d.csv"), "uint32 A,uint16 B,uint32 A\n1,2,3\n").unwrap();
    let o = sb.run("logreplay", &["-f", "d.csv", "-i", "f:d.trapcap"]);
    assert_clean_failure(
        &o,
        "logreplay: error: d.csv:1: the header names field `A` twice (columns 1 and 3)",
    );
    assert_eq!(stderr(&o).lines().count(), 1);
}

#[test]
fn a_time_jump_is_replayed_without_waiting_decades() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("t.csv"),
        "time,uint32 A\n2020-01-01T00:00:00,1\n2020-01-01T00:00:01,2\n\
         2060-01-01T00:00:00,3\n2090-01-01T00:00:00,4\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let child = sb.spawn("logreplay", &["-f", "t.csv", "-i", "f:t.trapcap"]);
    let o = nemea_rs::wait_output(child, std::time::Duration::from_secs(30), "logreplay");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    // One warning for the first jump; the one-second step was waited for.
    assert_eq!(
        stderr(&o),
        "logreplay: warning: t.csv:4: the time column jumps 1262303999 s ahead; replaying on \
         without waiting (jumps over 600 s are not waited for)\n"
    );
    let text = ok_stdout(&sb.run("logger", &["-i", "f:t.trapcap"]), "logger");
    assert_eq!(text, "1\n2\n3\n4\n");
}
