//! The shell-pipeline tools on real captures: merger and the aggregators
//! between flow_meter and logger, over files and unix sockets. Expected
//! values are computed here from logger's text of the inputs.

use nemea_rs::{interrupt, ok_stdout, shared_data, wait_output, Sandbox};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn capture(name: &str) -> Option<PathBuf> {
    shared_data(&format!("pcaps/zeek-traces/{name}"))
}

/// Splits a logger line at commas outside double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A logger `-t` table: the header's `type NAME` items and one
/// NAME → value map per record.
struct Table {
    columns: Vec<(String, String)>,
    rows: Vec<BTreeMap<String, String>>,
}

fn table(text: &str) -> Table {
    let mut lines = text.lines();
    let columns: Vec<(String, String)> = lines
        .next()
        .expect("a header line")
        .split(',')
        .map(|c| {
            let (ty, name) = c.split_once(' ').expect("type NAME");
            (ty.to_string(), name.to_string())
        })
        .collect();
    let rows = lines
        .map(|l| {
            let values = split_csv(l);
            assert_eq!(values.len(), columns.len(), "line {l}");
            columns.iter().map(|(_, n)| n.clone()).zip(values).collect()
        })
        .collect();
    Table { columns, rows }
}

/// What logger prints for a zero / empty field of type `ty`.
fn zero_text(ty: &str) -> &'static str {
    match ty {
        "ipaddr" => "::",
        "macaddr" => "00:00:00:00:00:00",
        "time" => "1970-01-01T00:00:00.000000",
        "string" => "\"\"",
        "bytes" => "",
        "float" | "double" => "0.000000",
        t if t.ends_with('*') => "[]",
        _ => "0",
    }
}

fn logger_table(sb: &Sandbox, ifc: &str) -> Table {
    table(&ok_stdout(&sb.run("logger", &["-t", "-i", ifc]), "logger"))
}

fn flow_meter(sb: &Sandbox, pcap: &Path, out: &str, plugins: &[&str]) {
    let mut args = vec!["-r", pcap.to_str().unwrap(), "-i", out];
    for p in plugins {
        args.extend(["-p", p]);
    }
    ok_stdout(&sb.run("flow_meter", &args), "flow_meter");
}

/// The records of `inputs` as merger should give them on `columns`: each
/// record with the fields its input lacks at their zero value, as sorted
/// lines of `NAME=value` pairs.
fn expected_merge(inputs: &[&Table], columns: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = inputs
        .iter()
        .flat_map(|t| t.rows.iter())
        .map(|row| {
            columns
                .iter()
                .map(|(ty, name)| {
                    format!(
                        "{name}={}",
                        row.get(name).map_or(zero_text(ty), String::as_str)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    out
}

fn rows_as_lines(t: &Table) -> Vec<String> {
    let mut out: Vec<String> = t
        .rows
        .iter()
        .map(|row| {
            t.columns
                .iter()
                .map(|(_, n)| format!("{n}={}", row[n]))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    out
}

/// The union of two headers, as a sorted list.
fn union_columns(a: &Table, b: &Table) -> Vec<(String, String)> {
    let mut u: Vec<(String, String)> = a.columns.iter().chain(&b.columns).cloned().collect();
    u.sort();
    u.dedup();
    u
}

fn sorted(cols: &[(String, String)]) -> Vec<(String, String)> {
    let mut c = cols.to_vec();
    c.sort();
    c
}

/// Flows of two captures, one with the basic flow fields, one with HTTP
/// fields too.
fn two_flow_files(sb: &Sandbox) -> Option<(Table, Table)> {
    let a = capture("wikipedia.pcap")?;
    let b = capture("var-services-std-ports.pcap")?;
    flow_meter(sb, &a, "f:a.trapcap", &[]);
    flow_meter(sb, &b, "f:b.trapcap", &["http"]);
    let (ta, tb) = (
        logger_table(sb, "f:a.trapcap"),
        logger_table(sb, "f:b.trapcap"),
    );
    // flow_meter -p http exports only the flows that carried HTTP.
    assert!(ta.rows.len() > 20 && tb.rows.len() >= 2);
    assert!(
        tb.columns.len() > ta.columns.len(),
        "the second input has more fields"
    );
    Some((ta, tb))
}

#[test]
fn merger_joins_two_flow_meter_outputs_over_files() {
    let sb = Sandbox::new();
    let Some((ta, tb)) = two_flow_files(&sb) else {
        return;
    };
    let o = sb.run(
        "merger",
        &["-v", "-i", "f:a.trapcap,f:b.trapcap,f:m.trapcap"],
    );
    ok_stdout(&o, "merger");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("input 0 (f:a.trapcap): {} records", ta.rows.len())),
        "{err}"
    );
    assert!(
        err.contains(&format!("input 1 (f:b.trapcap): {} records", tb.rows.len())),
        "{err}"
    );
    let tm = logger_table(&sb, "f:m.trapcap");
    let union = union_columns(&ta, &tb);
    assert_eq!(sorted(&tm.columns), union);
    assert_eq!(tm.rows.len(), ta.rows.len() + tb.rows.len());
    assert_eq!(rows_as_lines(&tm), expected_merge(&[&ta, &tb], &tm.columns));
}

#[test]
fn merger_joins_two_flow_meter_outputs_over_sockets() {
    let sb = Sandbox::new();
    let Some((ta, tb)) = two_flow_files(&sb) else {
        return;
    };
    // Every process stops by itself: flow_meter sends end of stream, merger
    // passes one on after both inputs ended, logger stops at it.
    let logger = sb.spawn("logger", &["-t", "-i", "u:merged"]);
    let merger = sb.spawn("merger", &["-v", "-i", "u:fa,u:fb,u:merged"]);
    let a = capture("wikipedia.pcap").unwrap();
    let b = capture("var-services-std-ports.pcap").unwrap();
    let fa = sb.spawn("flow_meter", &["-r", a.to_str().unwrap(), "-i", "u:fa"]);
    let fb = sb.spawn(
        "flow_meter",
        &["-r", b.to_str().unwrap(), "-p", "http", "-i", "u:fb"],
    );
    for (child, what) in [(fa, "flow_meter a"), (fb, "flow_meter b")] {
        ok_stdout(&wait_output(child, Duration::from_secs(60), what), what);
    }
    let m = wait_output(merger, Duration::from_secs(60), "merger");
    ok_stdout(&m, "merger");
    let err = String::from_utf8_lossy(&m.stderr);
    assert!(
        err.contains(&format!("input 0 (u:fa): {} records", ta.rows.len())),
        "{err}"
    );
    assert!(
        err.contains(&format!("input 1 (u:fb): {} records", tb.rows.len())),
        "{err}"
    );
    let tm = table(&ok_stdout(
        &wait_output(logger, Duration::from_secs(60), "logger"),
        "logger",
    ));
    assert_eq!(sorted(&tm.columns), union_columns(&ta, &tb));
    assert_eq!(rows_as_lines(&tm), expected_merge(&[&ta, &tb], &tm.columns));
}

#[test]
fn merger_with_a_fixed_template_copies_only_its_fields() {
    let sb = Sandbox::new();
    let Some((ta, tb)) = two_flow_files(&sb) else {
        return;
    };
    let spec = "ipaddr SRC_IP,uint64 BYTES,string HTTP_REQUEST_HOST,uint32 NOT_IN_INPUT";
    ok_stdout(
        &sb.run(
            "merger",
            &["-u", spec, "-i", "f:a.trapcap,f:b.trapcap,f:m.trapcap"],
        ),
        "merger",
    );
    let tm = logger_table(&sb, "f:m.trapcap");
    let want_cols = [
        ("ipaddr", "SRC_IP"),
        ("uint64", "BYTES"),
        ("string", "HTTP_REQUEST_HOST"),
        ("uint32", "NOT_IN_INPUT"),
    ];
    let cols: Vec<(String, String)> = want_cols
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(sorted(&tm.columns), sorted(&cols));
    let project = |t: &Table| Table {
        columns: t
            .columns
            .iter()
            .filter(|c| cols.contains(c))
            .cloned()
            .collect(),
        rows: t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|(k, _)| cols.iter().any(|(_, n)| n == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect(),
    };
    assert_eq!(
        rows_as_lines(&tm),
        expected_merge(&[&project(&ta), &project(&tb)], &tm.columns)
    );
    assert!(
        tb.rows.iter().any(|r| r["HTTP_REQUEST_HOST"] != "\"\""),
        "some HTTP hosts to copy"
    );
}

#[test]
fn merger_errors_are_one_line() {
    let sb = Sandbox::new();
    let o = sb.run(
        "merger",
        &["-u", "uint99 X", "-i", "f:a.trapcap,f:m.trapcap"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("merger: error: -u: bad template") && err.lines().count() == 1,
        "{err}"
    );
}

/// Per SRC_IP: flows, BYTES, PACKETS, first TIME_FIRST, last TIME_LAST.
type Sums = BTreeMap<String, (u64, u64, u64, String, String)>;

fn sums_by_src(t: &Table) -> Sums {
    let mut s = Sums::new();
    for r in &t.rows {
        let e = s.entry(r["SRC_IP"].clone()).or_insert((
            0,
            0,
            0,
            r["TIME_FIRST"].clone(),
            r["TIME_LAST"].clone(),
        ));
        e.0 += 1;
        e.1 += r["BYTES"].parse::<u64>().unwrap();
        e.2 += r["PACKETS"].parse::<u64>().unwrap();
        // The text times sort as the times do.
        e.3 = e.3.clone().min(r["TIME_FIRST"].clone());
        e.4 = e.4.clone().max(r["TIME_LAST"].clone());
    }
    s
}

fn aggregated(t: &Table) -> Sums {
    assert_eq!(
        sorted(&t.columns),
        sorted(
            &[
                ("ipaddr", "SRC_IP"),
                ("uint64", "BYTES"),
                ("uint32", "PACKETS"),
                ("time", "TIME_FIRST"),
                ("time", "TIME_LAST"),
                ("uint32", "COUNT")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        )
    );
    let mut s = Sums::new();
    for r in &t.rows {
        let prev = s.insert(
            r["SRC_IP"].clone(),
            (
                r["COUNT"].parse().unwrap(),
                r["BYTES"].parse().unwrap(),
                r["PACKETS"].parse().unwrap(),
                r["TIME_FIRST"].clone(),
                r["TIME_LAST"].clone(),
            ),
        );
        assert!(prev.is_none(), "one record per SRC_IP: {}", r["SRC_IP"]);
    }
    s
}

const BY_SRC: &str = "<aggregator>\n  <id name=\"by_src\">\n    <field><name>SRC_IP</name><type>KEY</type></field>\n    <field><name>BYTES</name><type>SUM</type></field>\n    <field><name>PACKETS</name><type>SUM</type></field>\n  </id>\n</aggregator>\n";

/// The flows of wikipedia.pcap and their sums per SRC_IP.
fn flows_and_sums(sb: &Sandbox) -> Option<(PathBuf, Sums)> {
    let pcap = capture("wikipedia.pcap")?;
    flow_meter(sb, &pcap, "f:flows.trapcap", &[]);
    let want = sums_by_src(&logger_table(sb, "f:flows.trapcap"));
    assert!(
        want.len() > 5 && want.values().any(|v| v.0 > 5),
        "several sources, some with many flows"
    );
    std::fs::write(sb.path("agg.xml"), BY_SRC).unwrap();
    Some((pcap, want))
}

#[test]
fn biflow_aggregator_sums_a_capture_by_src_ip_over_files() {
    let sb = Sandbox::new();
    let Some((_, want)) = flows_and_sums(&sb) else {
        return;
    };
    // Timeouts longer than the capture: one record per source.
    let args = [
        "-e",
        "-c",
        "agg.xml",
        "-n",
        "by_src",
        "-a",
        "100000",
        "-p",
        "100000",
        "-i",
        "f:flows.trapcap,f:agg.trapcap",
    ];
    ok_stdout(&sb.run("biflow_aggregator", &args), "biflow_aggregator");
    assert_eq!(aggregated(&logger_table(&sb, "f:agg.trapcap")), want);
    // The older command line gives the same.
    let args = [
        "-k",
        "SRC_IP",
        "-s",
        "BYTES",
        "-s",
        "PACKETS",
        "-t",
        "A:100000",
        "-i",
        "f:flows.trapcap,f:agg2.trapcap",
    ];
    ok_stdout(&sb.run("aggregator", &args), "aggregator");
    assert_eq!(aggregated(&logger_table(&sb, "f:agg2.trapcap")), want);
}

#[test]
fn biflow_aggregator_sums_a_capture_by_src_ip_over_sockets() {
    let sb = Sandbox::new();
    let Some((pcap, want)) = flows_and_sums(&sb) else {
        return;
    };
    let logger = sb.spawn("logger", &["-t", "-i", "u:agg"]);
    let agg = sb.spawn(
        "biflow_aggregator",
        &[
            "-e",
            "-c",
            "agg.xml",
            "-n",
            "by_src",
            "-a",
            "100000",
            "-p",
            "100000",
            "-i",
            "u:flows,u:agg",
        ],
    );
    let fm = sb.spawn(
        "flow_meter",
        &["-r", pcap.to_str().unwrap(), "-i", "u:flows"],
    );
    ok_stdout(
        &wait_output(fm, Duration::from_secs(60), "flow_meter"),
        "flow_meter",
    );
    ok_stdout(
        &wait_output(agg, Duration::from_secs(60), "biflow_aggregator"),
        "biflow_aggregator",
    );
    let got = table(&ok_stdout(
        &wait_output(logger, Duration::from_secs(60), "logger"),
        "logger",
    ));
    assert_eq!(aggregated(&got), want);
}

#[test]
fn biflow_aggregator_global_timeout_splits_by_record_time() {
    let sb = Sandbox::new();
    let Some((_, want)) = flows_and_sums(&sb) else {
        return;
    };
    // Every 2 s of flow time everything is exported: sources whose flows
    // span more than that come out in several records, whose sums add up.
    let args = [
        "-e",
        "-c",
        "agg.xml",
        "-n",
        "by_src",
        "-g",
        "2a",
        "-i",
        "f:flows.trapcap,f:agg.trapcap",
    ];
    ok_stdout(&sb.run("biflow_aggregator", &args), "biflow_aggregator");
    let t = logger_table(&sb, "f:agg.trapcap");
    assert!(
        t.rows.len() > want.len(),
        "some sources split: {} records for {} sources",
        t.rows.len(),
        want.len()
    );
    let mut summed = Sums::new();
    for r in &t.rows {
        let e = summed.entry(r["SRC_IP"].clone()).or_insert((
            0,
            0,
            0,
            r["TIME_FIRST"].clone(),
            r["TIME_LAST"].clone(),
        ));
        e.0 += r["COUNT"].parse::<u64>().unwrap();
        e.1 += r["BYTES"].parse::<u64>().unwrap();
        e.2 += r["PACKETS"].parse::<u64>().unwrap();
        e.3 = e.3.clone().min(r["TIME_FIRST"].clone());
        e.4 = e.4.clone().max(r["TIME_LAST"].clone());
    }
    assert_eq!(summed, want);
}

#[test]
fn biflow_aggregator_config_errors_are_one_line() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("good.xml"), BY_SRC).unwrap();
    std::fs::write(sb.path("bad.xml"), "<aggregator><id name=\"x\"><field><name>A</name><type>SUMM</type></field></id></aggregator>").unwrap();
    for (args, want) in [
        (vec!["-c", "bad.xml", "-n", "x"], "invalid type `SUMM`"),
        (
            vec!["-c", "bad.xml", "-n", "y"],
            "no section <id name=\"y\">",
        ),
        (
            vec!["-c", "missing.xml", "-n", "x"],
            "cannot read the config missing.xml",
        ),
        (
            vec!["-c", "good.xml", "-n", "by_src", "-g", "5q"],
            "-g `5q`",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["-i", "f:none.trapcap,b:"]);
        let o = sb.run("biflow_aggregator", &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(want) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// Bits two addresses share from the left (both of one family).
fn common_prefix(a: &str, b: &str) -> u32 {
    let bits = |s: &str| -> u128 {
        match s.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
            std::net::IpAddr::V6(v) => u128::from(v),
        }
    };
    (bits(a) ^ bits(b)).leading_zeros()
}

#[test]
fn anonymizer_keeps_prefixes_and_reverses_with_the_key() {
    let sb = Sandbox::new();
    let Some(pcap) = capture("wikipedia.pcap") else {
        return;
    };
    flow_meter(&sb, &pcap, "f:flows.trapcap", &[]);
    let key = "0x1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
    std::fs::write(sb.path("key.txt"), format!("{key}\n")).unwrap();
    // Over a socket, so end of stream must be passed on for logger to stop.
    let logger = sb.spawn("logger", &["-t", "-i", "u:anon"]);
    let anon = sb.spawn(
        "anonymizer",
        &["-f", "key.txt", "-i", "f:flows.trapcap,u:anon"],
    );
    let done = wait_output(anon, Duration::from_secs(60), "anonymizer");
    if !done.status.success() {
        interrupt(&logger);
    }
    ok_stdout(&done, "anonymizer");
    let anon_text = ok_stdout(
        &wait_output(logger, Duration::from_secs(60), "logger"),
        "logger",
    );
    let orig = logger_table(&sb, "f:flows.trapcap");
    let anon = table(&anon_text);
    assert_eq!(anon.columns, orig.columns);
    assert_eq!(anon.rows.len(), orig.rows.len());
    let mut pairs = Vec::new();
    for (o, a) in orig.rows.iter().zip(&anon.rows) {
        for f in ["SRC_IP", "DST_IP"] {
            assert_ne!(o[f], a[f], "{f} anonymised");
            assert_eq!(o[f].contains(':'), a[f].contains(':'), "the family is kept");
            pairs.push((o[f].clone(), a[f].clone()));
        }
        for (k, v) in o {
            if k != "SRC_IP" && k != "DST_IP" {
                assert_eq!(&a[k], v, "{k} untouched");
            }
        }
    }
    for (o1, a1) in &pairs {
        for (o2, a2) in &pairs {
            if o1.contains(':') == o2.contains(':') {
                assert_eq!(
                    common_prefix(o1, o2),
                    common_prefix(a1, a2),
                    "{o1} {o2} → {a1} {a2}"
                );
            }
        }
    }
    // -d with the same key (on the command line this time) gives the flows back.
    let args = ["-k", key, "-i", "f:flows.trapcap,f:anon.trapcap"];
    ok_stdout(&sb.run("anonymizer", &args), "anonymizer");
    let args = ["-d", "-k", key, "-i", "f:anon.trapcap,f:back.trapcap"];
    ok_stdout(&sb.run("anonymizer", &args), "anonymizer");
    let back = ok_stdout(&sb.run("logger", &["-t", "-i", "f:back.trapcap"]), "logger");
    let orig_text = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:flows.trapcap"]),
        "logger",
    );
    assert!(
        back == orig_text,
        "de-anonymised flows differ from the originals"
    );
    // A bad key is one line naming the fix.
    let o = sb.run("anonymizer", &["-k", "short", "-i", "f:flows.trapcap,b:"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("give 32 characters, or 0x and 64 hex digits")
            && err.lines().count() == 1,
        "{err}"
    );
}
