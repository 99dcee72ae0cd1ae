//! File interface: rotation names, append mode, globbed input.

use nemea_rs::{ok_stdout, Sandbox};

fn files(sb: &Sandbox, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

#[test]
fn size_rotation_keeps_every_record_once() {
    let sb = Sandbox::new();
    // 60 000 records of 67 bytes: about 4 MB.
    ok_stdout(
        &sb.run("flow_generator", &["-n", "60000", "-i", "f:src.trapcap"]),
        "flow_generator",
    );
    let want = ok_stdout(&sb.run("logger", &["-i", "f:src.trapcap"]), "logger");
    ok_stdout(
        &sb.run("traffic_repeater", &["-i", "f:src.trapcap,f:out:size=1"]),
        "traffic_repeater",
    );
    assert_eq!(
        files(&sb, "out"),
        ["out.00000", "out.00001", "out.00002", "out.00003"]
    );
    for f in &files(&sb, "out")[..3] {
        let len = std::fs::metadata(sb.path(f)).unwrap().len();
        assert!(
            (1_048_576..1_048_576 + 100_100).contains(&len),
            "{f}: {len} bytes"
        );
    }
    let got = ok_stdout(&sb.run("logger", &["-i", "f:out.*"]), "logger");
    assert!(got == want, "records lost or repeated across rotated files");
}

#[test]
fn append_mode_run_twice_gives_two_files() {
    let sb = Sandbox::new();
    for _ in 0..2 {
        ok_stdout(
            &sb.run("flow_generator", &["-n", "10", "-i", "f:b.trapcap:a"]),
            "flow_generator",
        );
    }
    assert_eq!(
        files(&sb, "b.trapcap"),
        ["b.trapcap.00000", "b.trapcap.00001"]
    );
    for f in ["f:b.trapcap.00000", "f:b.trapcap.00001"] {
        let text = ok_stdout(&sb.run("logger", &["-i", f]), "logger");
        assert_eq!(text.lines().count(), 10, "{f}");
    }
}

#[test]
fn time_rotation_name_carries_the_aligned_minute() {
    let sb = Sandbox::new();
    let before = chrono_free_now();
    ok_stdout(
        &sb.run("flow_generator", &["-n", "10", "-i", "f:c.trapcap:time=5"]),
        "flow_generator",
    );
    let after = chrono_free_now();
    let names = files(&sb, "c.trapcap");
    assert_eq!(names.len(), 1, "{names:?}");
    let slot = |t: u64| utc_minute_name(t - t % 300);
    let ok = [slot(before), slot(after)];
    assert!(ok.contains(&names[0]), "{} is not one of {ok:?}", names[0]);
}

#[test]
fn strftime_path_and_directories() {
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run(
            "flow_generator",
            &["-n", "1", "-i", "f:sub/dir/e_%Y.trapcap"],
        ),
        "flow_generator",
    );
    let year = 1970 + chrono_free_now() / 31_556_952;
    let found = (year - 1..=year + 1).any(|y| sb.path(&format!("sub/dir/e_{y}.trapcap")).exists());
    assert!(found);
}

fn chrono_free_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `c.trapcap.YYYYmmddHHMM` of a UTC time (the tests run with TZ=UTC).
fn utc_minute_name(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let (y, m, d) = unirec::time::civil_from_days(days);
    let s = t % 86_400;
    format!(
        "c.trapcap.{y:04}{m:02}{d:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60
    )
}
