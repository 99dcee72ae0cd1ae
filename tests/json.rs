//! JSON out of UniRec: `logger --json` read by `jq`, and `unirec2json` in a
//! socket pipeline. The records are unirecfilter's table records, which
//! hold every UniRec type. (Each type's round trip value by value is the
//! logger crate's unit test `json::tests::round_trip`.)

use libtrap::{DataFormat, Input, Required};
use nemea_rs::{ok_stdout, repo_root, wait_output, Sandbox};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn records_csv() -> String {
    repo_root()
        .join("modules/unirecfilter/tests/data/records.csv")
        .display()
        .to_string()
}

/// Runs `jq ARGS` on `input`.
fn jq(args: &[&str], input: &str) -> String {
    let mut child = Command::new("jq")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jq {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn logger_json_is_read_by_jq() {
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run("logreplay", &["-f", &records_csv(), "-i", "f:in.trapcap"]),
        "logreplay",
    );
    let json = ok_stdout(
        &sb.run("logger", &["--json", "-i", "f:in.trapcap"]),
        "logger",
    );
    assert_eq!(json.lines().count(), 8);
    // Every line is one object with every field.
    assert_eq!(jq(&["-c", "keys | length"], &json), "21\n".repeat(8));
    let row = |id: u32, expr: &str| jq(&["-r", &format!("select(.ID == {id}) | {expr}")], &json);
    assert_eq!(
        row(
            3,
            r#""\(.SRC_IP) \(.DST_IP) \(.TIME_FIRST) \(.PAYLOAD) \(.LENGTHS) \(.KIND) \(.SRC_MAC)""#
        ),
        "2001:db8::1 2001:db8::53 2019-06-01T00:00:00.123000Z 00ff [53] Z aa:bb:cc:dd:ee:ff\n"
    );
    assert_eq!(
        row(
            1,
            r#""\(.SMALL) \(.SHORT) \(.MEDIUM) \(.LARGE) \(.RATIO) \(.SCORE) \(.URL)""#
        ),
        "-5 -300 -70000 -5000000000 1.5 2.25 /index.html\n"
    );
    assert_eq!(
        row(8, ".SRC_IP, .URL"),
        "::ffff:10.0.0.1\n/PATH with space\n"
    );
    assert_eq!(row(4, ".LENGTHS | add"), "3040\n");
    // Times are ISO 8601 that jq's date functions read (whole seconds).
    assert_eq!(
        row(7, r#".TIME_FIRST | sub("\\.[0-9]+Z$"; "Z") | fromdate"#),
        "0\n"
    );
    // -o: the chosen fields in order, a missing one as null.
    let some = ok_stdout(
        &sb.run(
            "logger",
            &[
                "--json",
                "-o",
                "URL,ID,NOPE",
                "-c",
                "1",
                "-i",
                "f:in.trapcap",
            ],
        ),
        "logger",
    );
    assert_eq!(some, "{\"URL\":\"/index.html\",\"ID\":1,\"NOPE\":null}\n");
    assert_eq!(
        jq(&["-c", "keys_unsorted"], &some),
        "[\"URL\",\"ID\",\"NOPE\"]\n"
    );
}

#[test]
fn unirec2json_sends_one_document_per_record_then_end_of_stream() {
    let sb = Sandbox::new();
    let conv = sb.spawn(
        "unirec2json",
        &["-i", "u:j_in,f:out.trapcap", "-f", "flows"],
    );
    ok_stdout(
        &sb.run("logreplay", &["-f", &records_csv(), "-i", "u:j_in"]),
        "logreplay",
    );
    ok_stdout(
        &wait_output(conv, Duration::from_secs(30), "unirec2json"),
        "unirec2json",
    );
    let file = std::fs::File::open(sb.path("out.trapcap")).unwrap();
    let mut input =
        Input::from_trapcap_readers("out.trapcap", vec![("out.trapcap".into(), Box::new(file))]);
    input.set_required(Required::Json(None));
    let mut docs = Vec::new();
    loop {
        let msg = input.recv().unwrap();
        if msg.is_eos() {
            break;
        }
        assert_eq!(msg.format, Some(&DataFormat::Json("flows".into())));
        let v: serde_json::Value = serde_json::from_slice(msg.data).unwrap();
        docs.push(v);
    }
    assert_eq!(docs.len(), 8);
    let ids: Vec<u64> = docs.iter().map(|d| d["ID"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(docs[5]["BYTES"].as_u64(), Some(u64::MAX));
    assert_eq!(docs[2]["LARGE"].as_i64(), Some(i64::MIN));
    assert_eq!(docs[1]["TIME_FIRST"], "2018-01-10T21:17:00.500000Z");
    assert_eq!(docs[0]["LENGTHS"], serde_json::json!([1, 2]));
    // The documents are what logger --json prints.
    ok_stdout(
        &sb.run("logreplay", &["-f", &records_csv(), "-i", "f:in.trapcap"]),
        "logreplay",
    );
    let lines = ok_stdout(
        &sb.run("logger", &["--json", "-i", "f:in.trapcap"]),
        "logger",
    );
    let printed: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, docs);
}
