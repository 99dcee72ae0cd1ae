//! Golden-file tests of the formats: CSV → UniRec → `.trapcap` → CSV.
//!
//! `golden/all-types.trapcap` and `golden/all-types.expected` were checked
//! byte for byte against C NEMEA (libtrap 1.18.2, logreplay and logger of
//! Nemea-Modules 2.27): C logreplay writes the same file from
//! `all-types.csv` and C logger prints the same text from it.

use nemea_rs::{ok_stdout, repo_root, Sandbox};

fn golden(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/golden").join(name)
}

#[test]
fn logreplay_writes_the_golden_trapcap() {
    let sb = Sandbox::new();
    let csv = golden("all-types.csv");
    let out = sb.run(
        "logreplay",
        &["-f", csv.to_str().unwrap(), "-i", "f:o.trapcap"],
    );
    ok_stdout(&out, "logreplay");
    let ours = std::fs::read(sb.path("o.trapcap")).unwrap();
    let want = std::fs::read(golden("all-types.trapcap")).unwrap();
    assert_eq!(
        ours, want,
        "the .trapcap differs from the golden (C-compatible) file"
    );
}

#[test]
fn logger_prints_the_golden_text() {
    let sb = Sandbox::new();
    let spec = format!("f:{}", golden("all-types.trapcap").display());
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", &spec]), "logger");
    let want = std::fs::read_to_string(golden("all-types.expected")).unwrap();
    assert_eq!(text, want);
}

#[test]
fn csv_round_trip_through_a_file() {
    let sb = Sandbox::new();
    let csv = golden("all-types.csv");
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-f", csv.to_str().unwrap(), "-i", "f:o.trapcap"],
        ),
        "logreplay",
    );
    let first = ok_stdout(&sb.run("logger", &["-t", "-i", "f:o.trapcap"]), "logger");
    // The logger output is itself a valid logreplay input: replaying it gives
    // the same text. Except for one thing the format cannot carry (in C NEMEA
    // neither): a `char` field holding a comma is printed unquoted, so the
    // third data row (C = ',') is left out.
    let replayable: String = first
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(sb.path("again.csv"), &replayable).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "again.csv", "-i", "f:again.trapcap"]),
        "logreplay",
    );
    let second = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:again.trapcap"]),
        "logger",
    );
    assert_eq!(replayable, second);
}

#[test]
fn logger_options_delimiter_cut_time_and_file() {
    let sb = Sandbox::new();
    let spec = format!("f:{}", golden("all-types.trapcap").display());
    let text = ok_stdout(
        &sb.run("logger", &["-c", "1", "-d", "\\t", "-i", &spec]),
        "logger",
    );
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with("2001:db8::1\t192.168.1.10\t1500\t"),
        "{text}"
    );
    let text = ok_stdout(&sb.run("logger", &["-t", "-c", "0", "-i", &spec]), "logger");
    assert_eq!(text.lines().count(), 1, "-c 0 -t prints only the header");
    let text = ok_stdout(
        &sb.run("logger", &["-T", "-t", "-c", "2", "-i", &spec]),
        "logger",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("time,ipaddr DST_IP,"));
    assert_eq!(lines[1].as_bytes()[19], b',', "{}", lines[1]);
    assert!(lines[1][20..].starts_with("2001:db8::1,"));
    ok_stdout(
        &sb.run("logger", &["-w", "w.csv", "-i", &spec]),
        "logger -w",
    );
    ok_stdout(
        &sb.run("logger", &["-a", "w.csv", "-i", &spec]),
        "logger -a",
    );
    let written = std::fs::read_to_string(sb.path("w.csv")).unwrap();
    assert_eq!(written.lines().count(), 6);
}

#[test]
fn logreplay_time_column_is_read_and_can_be_disabled() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("t.csv"),
        "time,uint32 A\n2020-01-01T00:00:00,1\n2020-01-01T00:00:00,2\n2020-01-01T00:00:01,3\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    ok_stdout(
        &sb.run("logreplay", &["-f", "t.csv", "-i", "f:t.trapcap"]),
        "logreplay",
    );
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(900),
        "the replay is paced by the time column"
    );
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-d", "-c", "2", "-f", "t.csv", "-i", "f:u.trapcap"],
        ),
        "logreplay -d",
    );
    let text = ok_stdout(&sb.run("logger", &["-i", "f:u.trapcap"]), "logger");
    assert_eq!(text, "1\n2\n");
}
