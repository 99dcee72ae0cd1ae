//! The table test: every filter of `tests/data/filter_table.txt` on the
//! records of `tests/data/records.csv` (every UniRec type), checked against
//! the IDs of the records it passes, or against the column of its syntax
//! error. The integration test `tests/unirecfilter.rs` runs the same table
//! through the binaries.

use crate::{Filter, Precedence};
use unirec::{RecordBuilder, RecordRef, Template};

const RECORDS: &str = include_str!("../tests/data/records.csv");
const TABLE: &str = include_str!("../tests/data/filter_table.txt");

/// What a line of the table expects.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Ids(Vec<u32>),
    Error(usize),
}

fn table() -> Vec<(Want, &'static str)> {
    TABLE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (ids, expr) = l.split_once(':').expect("IDS: FILTER");
            let ids = ids.trim();
            let want = if let Some(col) = ids.strip_prefix("error ") {
                Want::Error(col.parse().expect("error COLUMN"))
            } else if ids == "-" {
                Want::Ids(Vec::new())
            } else {
                Want::Ids(
                    ids.split_whitespace()
                        .map(|i| i.parse().expect("an ID"))
                        .collect(),
                )
            };
            (want, expr.trim())
        })
        .collect()
}

fn records() -> (Template, Vec<Vec<u8>>) {
    let mut lines = RECORDS.lines();
    let header = logreplay::Header::parse(lines.next().expect("header")).expect("header");
    let t = header.template().clone();
    let mut out = Vec::new();
    for line in lines {
        let mut b = RecordBuilder::new(&t);
        header.fill(&mut b, line).expect("a record");
        let mut rec = Vec::new();
        b.finish(&mut rec).expect("fits");
        out.push(rec);
    }
    (t, out)
}

#[test]
fn every_filter_of_the_table() {
    let (t, recs) = records();
    let id = t.find("ID").expect("ID");
    let cases = table();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (want, expr) in &cases {
        let got = match Filter::parse(expr, Precedence::Standard) {
            Err(e) => Want::Error(e.col),
            Ok(f) => {
                let (b, _warnings) = f.bind(&t);
                Want::Ids(
                    recs.iter()
                        .map(|r| RecordRef::new_checked(&t, r).expect("valid"))
                        .filter(|r| b.matches(r))
                        .filter_map(|r| r.get_u32(id))
                        .collect(),
                )
            }
        };
        if got != *want {
            failures.push(format!("{expr:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_field_type() {
    let (t, _) = records();
    let exprs: Vec<&str> = table().into_iter().map(|(_, e)| e).collect();
    for f in t.fields() {
        assert!(
            exprs.iter().any(|e| e.contains(f.name())),
            "no filter on {} ({})",
            f.name(),
            f.ty()
        );
    }
}

#[test]
fn warnings_for_missing_fields_and_types() {
    let (t, _) = records();
    let w = |e: &str| Filter::parse(e, Precedence::Standard).unwrap().bind(&t).1;
    assert_eq!(
        w("NOPE == 1"),
        ["column 1: `NOPE` is not in the input template; the term is always false"]
    );
    assert!(w("LENGTHS == 1")[0].contains("arrays cannot be compared"));
    assert!(w("TIME_FIRST > 1000")[0].contains("YYYY-mm-dd"));
    assert!(w("x == 1 || SRC_IP == 5")[1].starts_with("column 11: `SRC_IP` is ipaddr"));
    assert!(w("DST_PORT == 80").is_empty());
    let t2 = Template::parse("uint16 SRC_PORT").unwrap();
    let (b, w2) = Filter::parse("port == 1 && host == 1.2.3.4", Precedence::Standard)
        .unwrap()
        .bind(&t2);
    assert_eq!(w2.len(), 1, "{w2:?}");
    assert!(w2[0].contains("`host` needs SRC_IP or DST_IP"), "{w2:?}");
    assert!(!b.is_always_true());
}

#[test]
fn c_precedence_reads_left_to_right() {
    let (t, recs) = records();
    let f = Filter::parse(
        "DST_PORT == 80 || DST_PORT == 53 && PROTOCOL == 17",
        Precedence::C,
    )
    .unwrap();
    let (b, _) = f.bind(&t);
    let ids: Vec<u32> = recs
        .iter()
        .map(|r| RecordRef::new_checked(&t, r).unwrap())
        .filter(|r| b.matches(r))
        .filter_map(|r| r.get_u32(t.find("ID").unwrap()))
        .collect();
    assert_eq!(ids, [3]);
}
