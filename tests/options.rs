//! One option style: long options are hyphenated and `--no-eos` is spelled the
//! same everywhere, while NEMEA's original spellings (underscores, `--no_eof`,
//! `--SSH`, `--noblockscans` …) still parse as hidden aliases, so NEMEA's
//! supervisor configs run unchanged.

use nemea_rs::Sandbox;
use std::process::Output;

/// Exit status 2 with "unexpected argument" is clap refusing an option.
fn assert_accepted(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() != Some(2) && !err.contains("unexpected argument"),
        "{what}: option refused ({}): {err}",
        o.status
    );
}

fn assert_all_accepted(sb: &Sandbox, cases: &[(&str, &[&str])]) {
    for (module, args) in cases {
        assert_accepted(&sb.run(module, args), &format!("{module} {args:?}"));
    }
}

fn flows(sb: &Sandbox) {
    let o = sb.run(
        "flow_generator",
        &["-n", "50", "--tcp-flags", "-i", "f:flows.trapcap"],
    );
    assert!(o.status.success(), "flow_generator: {o:?}");
}

#[test]
fn nemea_spellings_are_hidden_aliases() {
    let sb = Sandbox::new();
    flows(&sb);
    std::fs::write(sb.path("in.csv"), "uint32 A\n1\n2\n").unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "logreplay",
            &["--no_eof", "--disable_timing", "-f", "in.csv", "-i", "b:"],
        ),
        ("logreplay", &["--no-eof", "-f", "in.csv", "-i", "b:"]),
        (
            "traffic_repeater",
            &["--no_eof", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "logger",
            &["--output_fields", "SRC_IP", "-i", "f:flows.trapcap"],
        ),
        (
            "ddos_detector",
            &[
                "--minimal_attack_size",
                "5",
                "--mask_source_addresses",
                "16",
                "-i",
                "f:flows.trapcap,b:",
            ],
        ),
        (
            "dns_amplification",
            &[
                "--min_ampf",
                "3",
                "--record_count",
                "20000",
                "-i",
                "f:flows.trapcap,b:",
            ],
        ),
        (
            "bruteforce_detector",
            &["--SSH", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "vportscan_aggregator",
            &["--noblockscans", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "merger",
            &["--noeof", "--ignore-in-eof", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "aggregator",
            &[
                "--time_window",
                "A:10",
                "-k",
                "SRC_IP",
                "-i",
                "f:flows.trapcap,b:",
            ],
        ),
        (
            "ipv6stats",
            &[
                "--length_small",
                "10",
                "--length_multi",
                "2",
                "--no_last",
                "-i",
                "f:flows.trapcap",
            ],
        ),
        (
            "ipv6stats",
            &["--length_long", "20", "--no_last", "-i", "f:flows.trapcap"],
        ),
        (
            "flowcounter",
            &["--print", "10", "--print_c", "x", "-i", "f:flows.trapcap"],
        ),
    ];
    assert_all_accepted(&sb, cases);
}

#[test]
fn hyphenated_spellings_are_the_documented_ones() {
    let sb = Sandbox::new();
    flows(&sb);
    std::fs::write(sb.path("in.csv"), "uint32 A\n1\n2\n").unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "logreplay",
            &["--no-eos", "--disable-timing", "-f", "in.csv", "-i", "b:"],
        ),
        (
            "traffic_repeater",
            &["--no-eos", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "ddos_detector",
            &["--minimal-attack-size", "5", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "bruteforce_detector",
            &["--ssh", "--rdp", "--telnet", "-i", "f:flows.trapcap,b:"],
        ),
        (
            "vportscan_aggregator",
            &["--no-block-scans", "-i", "f:flows.trapcap,b:"],
        ),
    ];
    assert_all_accepted(&sb, cases);
    // The aliases stay hidden: --help shows only the hyphenated names.
    for module in [
        "logreplay",
        "ddos_detector",
        "dns_amplification",
        "bruteforce_detector",
        "logger",
    ] {
        let help = String::from_utf8_lossy(&sb.run(module, &["--help"]).stdout).into_owned();
        for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
            let long = line
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap_or("");
            assert!(
                !long.contains('_') && long.chars().all(|c| !c.is_ascii_uppercase()),
                "{module} --help shows `{long}`"
            );
        }
    }
}

/// Every binary of the workspace (the `[[bin]]`s cargo built).
const BINARIES: &[&str] = &[
    "logger",
    "logreplay",
    "traffic_repeater",
    "zwave_generator",
    "flow_generator",
    "flow_meter",
    "pcap_generator",
    "supervisor",
    "supcli",
    "vportscan_detector",
    "vportscan_aggregator",
    "haddrscan_detector",
    "haddrscan_aggregator",
    "bruteforce_detector",
    "ddos_detector",
    "dns_amplification",
    "hoststats",
    "ipblacklistfilter",
    "bl_downloader",
    "blacklist_aggregator",
    "miner_detector",
    "vportscan2idea",
    "haddrscan2idea",
    "bruteforce2idea",
    "ddos_detector2idea",
    "amplification2idea",
    "hoststats2idea",
    "blacklist2idea",
    "minerdetector2idea",
    "merger",
    "biflow_aggregator",
    "aggregator",
    "anonymizer",
    "link_traffic",
    "proto_traffic",
    "ipv6stats",
    "flowcounter",
    "session_probe",
    "fw_actuator",
    "sflow_collector",
    "capture_trigger",
    "packet_capture",
    "packet_dedup",
    "packet_store",
];

/// A usage error is one line `NAME: error: … (try --help)` with exit status 2,
/// in every binary (clap's own format is five lines).
#[test]
fn usage_errors_are_one_line_in_every_binary() {
    let sb = Sandbox::new();
    for m in BINARIES {
        let o = sb.run(m, &["--no-such-option"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{m}: {err}");
        assert_eq!(err.lines().count(), 1, "{m}: {err}");
        assert!(
            err.starts_with(&format!(
                "{m}: error: unexpected argument '--no-such-option'"
            )) && err.trim_end().ends_with("(try --help)"),
            "{m}: {err}"
        );
        // --help still prints clap's help on stdout, successfully.
        let help = sb.run(m, &["--help"]);
        assert!(
            help.status.success() && !help.stdout.is_empty(),
            "{m} --help"
        );
    }
}
