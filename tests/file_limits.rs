//! Issue 16, finding 10: `/dev/zero` given as a list or configuration file
//! was read until memory ran out. Every file read into memory is refused
//! above 256 MiB with one line naming the file and the limit.

use nemea_rs::{bin, wait_output, Sandbox};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: &str =
    "cannot read /dev/zero: larger than 256 MiB (the limit for a file read into memory)";

/// Runs module `name` with its address space capped at 1.5 GiB, so that a
/// module reading without a limit fails at once instead of taking the
/// machine's memory.
fn run_capped(sb: &Sandbox, name: &str, args: &[&str]) -> Output {
    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1572864 && exec \"$0\" \"$@\"")
        .arg(bin(name))
        .args(args)
        .current_dir(sb.dir.path())
        .env("TRAP_SOCKET_DIR", sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(60), name)
}

/// The module fails with exactly one line: `module: error: …` or, with
/// `warning`, a warning line first.
fn assert_refused(sb: &Sandbox, name: &str, args: &[&str], want: &[String]) {
    let o = run_capped(sb, name, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{name} {args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines, want, "{name} {args:?}");
}

#[test]
fn dev_zero_as_a_list_or_config_is_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("empty.trapcap"), "").unwrap();
    std::fs::write(sb.path("pools.txt"), "192.0.2.10:3333\n").unwrap();
    std::fs::write(
        sb.path("rules.yaml"),
        "addressgroups:\n  - id: g\n    file: /dev/zero\nrules:\n  - id: 1\n    condition: Source.IP4 in g\n    actions: [stdout]\n",
    )
    .unwrap();
    let err = |m: &str, text: &str| vec![format!("{m}: error: {text}")];
    // Reporter rules and their address groups; the blacklist reporter's
    // downloader config.
    assert_refused(
        &sb,
        "vportscan2idea",
        &["-c", "rules.yaml", "-d"],
        &err(
            "vportscan2idea",
            &format!("rules.yaml: address group g: {LIMIT}"),
        ),
    );
    assert_refused(
        &sb,
        "vportscan2idea",
        &["-c", "/dev/zero", "-d"],
        &err("vportscan2idea", LIMIT),
    );
    let o = run_capped(
        &sb,
        "blacklist2idea",
        &["--blacklist-config", "/dev/zero", "-i", "f:empty.trapcap"],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains(LIMIT), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // Detector files, pool lists, detector configs.
    for (module, args) in [
        ("ipblacklistfilter", &["-4", "/dev/zero"][..]),
        ("ipblacklistfilter", &["-c", "/dev/zero"]),
        ("miner_detector", &["-b", "/dev/zero"]),
        ("miner_detector", &["-b", "pools.txt", "-w", "/dev/zero"]),
        ("miner_detector", &["-u", "/dev/zero"]),
        ("hoststats", &["-c", "/dev/zero"]),
        ("bruteforce_detector", &["-S", "-c", "/dev/zero"]),
        ("bruteforce_detector", &["-S", "-w", "/dev/zero"]),
    ] {
        let mut a = args.to_vec();
        a.extend(["-i", "f:empty.trapcap,f:out.trapcap"]);
        assert_refused(&sb, module, &a, &err(module, LIMIT));
    }
    // bl_downloader: its config, and a file:// list (which keeps its last
    // good content).
    assert_refused(
        &sb,
        "bl_downloader",
        &["-c", "/dev/zero", "--once"],
        &err("bl_downloader", LIMIT),
    );
    std::fs::write(
        sb.path("bl.toml"),
        "ipv4_file = \"ip4.blist\"\nipv6_file = \"ip6.blist\"\n\
         [[blacklist]]\nid = 1\nname = \"Zero\"\nsource = \"file:///dev/zero\"\n",
    )
    .unwrap();
    std::fs::write(sb.path("ip4.blist"), "192.0.2.1,1\n").unwrap();
    assert_refused(
        &sb,
        "bl_downloader",
        &["-c", "bl.toml", "--once"],
        &[
            format!("bl_downloader: warning: blacklist Zero: {LIMIT}; keeping the last good list"),
            "bl_downloader: error: 1 of 1 blacklists failed".to_string(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("ip4.blist")).unwrap(),
        "192.0.2.1,1\n"
    );
}

/// A directory or a block device is refused before reading.
#[test]
fn directories_are_not_lists() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("dir")).unwrap();
    let o = run_capped(
        &sb,
        "ipblacklistfilter",
        &["-4", "dir", "-i", "f:in.trapcap,f:out.trapcap"],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        e,
        "ipblacklistfilter: error: cannot read dir: a directory, not a file\n"
    );
}
