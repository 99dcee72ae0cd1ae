use super::*;
use unirec::record::RecordBuilder;
use unirec::text::write_record;

/// Records of `spec` from rows of values in the spec's order (arrays as
/// space-separated elements, as logreplay hands them over).
fn records(spec: &str, rows: &[&str]) -> (Template, Vec<Vec<u8>>) {
    let t = Template::parse(spec).unwrap();
    let names: Vec<&str> = spec
        .split(',')
        .map(|f| f.split_whitespace().nth(1).unwrap())
        .collect();
    let recs = rows
        .iter()
        .map(|row| {
            let mut b = RecordBuilder::new(&t);
            for (name, v) in names.iter().zip(row.split(',')) {
                b.set_from_text(t.find(name).unwrap(), v).unwrap();
            }
            let mut out = Vec::new();
            b.finish(&mut out).unwrap();
            out
        })
        .collect();
    (t, recs)
}

struct Run {
    agg: Aggregator,
    out: Vec<String>,
}

impl Run {
    fn new(fields: Vec<FieldConfig>, timeouts: Timeouts) -> Run {
        Run {
            agg: Aggregator::new(prepare(fields).unwrap(), timeouts, 1 << 16).unwrap(),
            out: Vec::new(),
        }
    }

    fn xml(xml: &str, timeouts: Timeouts) -> Run {
        Run {
            agg: Aggregator::new(parse_xml(xml, "s").unwrap(), timeouts, 1 << 16).unwrap(),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, spec: &str, rows: &[&str]) -> &mut Run {
        let (t, recs) = records(spec, rows);
        let old = self.agg.output().cloned();
        let mut got = Vec::new();
        let mut emit = |r: &[u8]| got.push(r.to_vec());
        let out_t = self.agg.set_template(t.spec(), &mut emit).unwrap().clone();
        if let Some(old) = old {
            self.collect(&old, &got);
        }
        for r in recs {
            let mut got = Vec::new();
            let mut emit = |r: &[u8]| got.push(r.to_vec());
            self.agg.process(&r, &mut emit).unwrap();
            self.collect(&out_t, &got);
        }
        self
    }

    fn end(&mut self) -> Vec<String> {
        let out_t = self.agg.output().unwrap().clone();
        let mut got = Vec::new();
        self.agg.flush(&mut |r: &[u8]| got.push(r.to_vec()));
        self.collect(&out_t, &got);
        std::mem::take(&mut self.out)
    }

    fn collect(&mut self, t: &Template, recs: &[Vec<u8>]) {
        for r in recs {
            let mut line = Vec::new();
            write_record(&RecordRef::new_checked(t, r).unwrap(), b',', &mut line);
            self.out
                .push(String::from_utf8(line).unwrap().trim_end().to_string());
        }
    }

    fn header(&self) -> String {
        self.agg.output().unwrap().header(b',')
    }
}

fn field(name: &str, func: Func) -> FieldConfig {
    FieldConfig::new(name, func)
}

const FOREVER: Timeouts = Timeouts {
    active: 1 << 30,
    passive: 1 << 30,
    global: None,
};

#[test]
fn every_function_on_one_key() {
    let xml = r#"<aggregator><id name="s">
        <field><name>SRC_IP</name><type>KEY</type></field>
        <field><name>S</name><type>SUM</type></field>
        <field><name>MI</name><type>MIN</type></field>
        <field><name>MA</name><type>MAX</type></field>
        <field><name>FNE</name><type>FIRST_NON_EMPTY</type></field>
        <field><name>LNE</name><type>LAST_NON_EMPTY</type></field>
        <field><name>F</name><type>FIRST</type></field>
        <field><name>L</name><type>LAST</type></field>
        <field><name>AV</name><type>AVG</type></field>
        <field><name>BO</name><type>BITOR</type></field>
        <field><name>BA</name><type>BITAND</type></field>
        <field><name>TXT</name><type>APPEND</type><delimiter>:</delimiter><size>12</size></field>
        <field><name>V</name><type>SORTED_MERGE</type><sort_key>K</sort_key><sort_type>ASCENDING</sort_type><size>5</size></field>
    </id></aggregator>"#;
    let spec = "ipaddr SRC_IP,time TIME_FIRST,time TIME_LAST,uint32 S,int32 MI,int32 MA,string FNE,string LNE,uint32 F,uint32 L,double AV,uint8 BO,uint8 BA,string TXT,uint32* K,uint16* V";
    let mut run = Run::xml(xml, FOREVER);
    let out = run
        .feed(
            spec,
            &[
                "10.0.0.1,2020-01-01T00:00:01,2020-01-01T00:00:07,100,-5,-5,,first,16,32,7,1,7,one,3 2 1,1 2 3",
                "10.0.0.1,2020-01-01T00:00:00.5,2020-01-01T00:00:11,200,-9,-1,x,,17,33,9,2,6,two,8 7 6,6 5 4",
                "10.0.0.1,2020-01-01T00:00:02,2020-01-01T00:00:03,300,0,-2,y,last,18,34,11,4,14,three,0,9",
            ],
        )
        .end();
    assert_eq!(
        run.header(),
        "ipaddr SRC_IP,double AV,time TIME_FIRST,time TIME_LAST,uint32 COUNT,uint32 F,uint32 L,int32 MA,int32 MI,uint32 S,uint8 BA,uint8 BO,string FNE,string LNE,string TXT,uint16* V"
    );
    // MAX of negative numbers is the largest of them (C's started at 0);
    // "three:" would make 14 bytes > 12, so it is left out whole.
    assert_eq!(
        out,
        [
            "10.0.0.1,9.000000,2020-01-01T00:00:00.500000,2020-01-01T00:00:11.000000,3,16,34,-1,-9,600,6,7,\"x\",\"last\",\"one:two:\",[9|3|2|1|4]"
        ]
    );
}

#[test]
fn unique_count_and_no_key() {
    let mut run = Run::new(
        vec![
            field("TEST", Func::UniqueCount),
            field("NAME", Func::UniqueCount),
        ],
        FOREVER,
    );
    let out = run
        .feed(
            "uint32 TEST,string NAME,time TIME_FIRST,time TIME_LAST",
            &[
                "7,a,2016-10-28T17:00:01,2016-10-28T17:00:07",
                "666,,2016-10-28T17:00:03,2016-10-28T17:00:11",
                "666,b,2016-10-28T17:00:03,2016-10-28T17:00:18",
                "6,a,2016-10-28T17:00:03,2016-10-28T17:00:19",
            ],
        )
        .end();
    assert_eq!(run.header(), "time TIME_FIRST,time TIME_LAST,uint32 COUNT,uint32 NAME_UNIQUE_COUNT,uint32 TEST_UNIQUE_COUNT");
    assert_eq!(
        out,
        ["2016-10-28T17:00:01.000000,2016-10-28T17:00:19.000000,4,2,3"]
    );
}

fn biflow_fields() -> Vec<FieldConfig> {
    let mut f: Vec<FieldConfig> = [
        ("SRC_IP", Some("DST_IP")),
        ("DST_IP", Some("SRC_IP")),
        ("SRC_PORT", Some("DST_PORT")),
        ("DST_PORT", Some("SRC_PORT")),
        ("PROTOCOL", None),
    ]
    .iter()
    .map(|(n, r)| FieldConfig {
        reverse_name: r.map(String::from),
        ..field(n, Func::Key)
    })
    .collect();
    f.push(FieldConfig {
        reverse_name: Some("PACKETS_REV".into()),
        ..field("PACKETS", Func::Sum)
    });
    f.push(FieldConfig {
        reverse_name: Some("PACKETS".into()),
        ..field("PACKETS_REV", Func::Sum)
    });
    f
}

const BIFLOW_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint32 PACKETS_REV,time TIME_FIRST,time TIME_LAST";

#[test]
fn biflow_merges_both_directions_in_the_oldest_records_orientation() {
    let mut run = Run::new(biflow_fields(), FOREVER);
    assert!(run.agg.fields.biflow);
    let out = run
        .feed(
            BIFLOW_SPEC,
            &[
                // 10.0.0.9 → 10.0.0.1 first seen at :05, the reply direction earlier at :01.
                "10.0.0.9,10.0.0.1,40000,53,17,3,1,2020-01-01T00:00:05,2020-01-01T00:00:06",
                "10.0.0.1,10.0.0.9,53,40000,17,10,0,2020-01-01T00:00:01,2020-01-01T00:00:02",
                "10.0.0.9,10.0.0.1,40000,53,17,5,2,2020-01-01T00:00:07,2020-01-01T00:00:08",
                // Another port: another flow.
                "10.0.0.9,10.0.0.1,40001,53,17,4,1,2020-01-01T00:00:07,2020-01-01T00:00:08",
            ],
        )
        .end();
    let mut out = out;
    out.sort();
    // The oldest record (:01) went 10.0.0.1:53 → 10.0.0.9:40000: its
    // direction got 10 + 1 + 2 packets, the other 3 + 0 + 5.
    assert_eq!(
        out,
        [
            // The lone record of the other flow comes out as it went in.
            "10.0.0.1,10.0.0.9,2020-01-01T00:00:07.000000,2020-01-01T00:00:08.000000,1,4,1,53,40001,17",
            "10.0.0.9,10.0.0.1,2020-01-01T00:00:01.000000,2020-01-01T00:00:08.000000,3,13,8,40000,53,17",
        ]
    );
    assert_eq!(
        run.header(),
        "ipaddr DST_IP,ipaddr SRC_IP,time TIME_FIRST,time TIME_LAST,uint32 COUNT,uint32 PACKETS,uint32 PACKETS_REV,uint16 DST_PORT,uint16 SRC_PORT,uint8 PROTOCOL"
    );
}

fn by_src(timeouts: Timeouts) -> Run {
    Run::new(
        vec![field("SRC_IP", Func::Key), field("BYTES", Func::Sum)],
        timeouts,
    )
}

const SPEC: &str = "ipaddr SRC_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

fn t(active: u64, passive: u64) -> Timeouts {
    Timeouts {
        active,
        passive,
        global: None,
    }
}

#[test]
fn passive_timeout_ends_an_idle_flow_on_record_time() {
    let mut run = by_src(t(100, 10));
    run.feed(
        SPEC,
        &[
            "10.0.0.1,1,2020-01-01T00:00:00,2020-01-01T00:00:01",
            "10.0.0.1,2,2020-01-01T00:00:05,2020-01-01T00:00:06",
            "10.0.0.2,100,2020-01-01T00:00:15,2020-01-01T00:00:15",
        ],
    );
    // 10.0.0.1's deadline is 6 + 10 = 16: not yet.
    assert!(run.out.is_empty());
    run.feed_more(&["10.0.0.2,100,2020-01-01T00:00:16,2020-01-01T00:00:16"]);
    assert_eq!(
        run.out,
        ["10.0.0.1,3,2020-01-01T00:00:00.000000,2020-01-01T00:00:06.000000,2"]
    );
    // Now a new flow for 10.0.0.1.
    run.feed_more(&["10.0.0.1,4,2020-01-01T00:00:17,2020-01-01T00:00:17"]);
    let mut end = run.end();
    end.sort();
    assert_eq!(
        end,
        [
            "10.0.0.1,3,2020-01-01T00:00:00.000000,2020-01-01T00:00:06.000000,2",
            "10.0.0.1,4,2020-01-01T00:00:17.000000,2020-01-01T00:00:17.000000,1",
            "10.0.0.2,200,2020-01-01T00:00:15.000000,2020-01-01T00:00:16.000000,2",
        ]
    );
}

impl Run {
    /// More records of the template set by the last `feed`.
    fn feed_more(&mut self, rows: &[&str]) -> &mut Run {
        let (_, recs) = records(SPEC, rows);
        let out_t = self.agg.output().unwrap().clone();
        for r in recs {
            let mut got = Vec::new();
            self.agg
                .process(&r, &mut |r: &[u8]| got.push(r.to_vec()))
                .unwrap();
            self.collect(&out_t, &got);
        }
        self
    }
}

#[test]
fn active_timeout_splits_a_long_flow() {
    let mut run = by_src(t(10, 5));
    run.feed(
        SPEC,
        (0..30)
            .map(|s| format!("10.0.0.1,1,2020-01-01T00:00:{s:02},2020-01-01T00:00:{s:02}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    );
    let end = run.end();
    // Active deadline 0 + 10: the record at :10 exports :00..:09 first.
    assert_eq!(
        end,
        [
            "10.0.0.1,10,2020-01-01T00:00:00.000000,2020-01-01T00:00:09.000000,10",
            "10.0.0.1,10,2020-01-01T00:00:10.000000,2020-01-01T00:00:19.000000,10",
            "10.0.0.1,10,2020-01-01T00:00:20.000000,2020-01-01T00:00:29.000000,10",
        ]
    );
}

fn rows_every_second(n: u32) -> Vec<String> {
    (0..n)
        .map(|s| {
            format!(
                "10.0.0.{},1,2020-01-01T00:00:{s:02},2020-01-01T00:00:{s:02}",
                s % 2 + 1
            )
        })
        .collect()
}

#[test]
fn global_timeout_relative_and_absolute() {
    let rows = rows_every_second(13);
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let g = |absolute| Timeouts {
        global: Some(Global {
            interval: 5,
            absolute,
        }),
        ..Timeouts::default()
    };
    // Relative: flushed when TIME_LAST reaches 0 + 5, then 5 + 5.
    let mut rel = by_src(g(false));
    let out = rel.feed(SPEC, &rows).end();
    let mut times: Vec<&str> = out
        .iter()
        .map(|l| &l.split(',').nth(2).unwrap()[17..19])
        .collect();
    times.sort();
    assert_eq!(times, ["00", "01", "05", "06", "10", "11"]);
    // Absolute: TIME_FIRST 1 s after the epoch's multiple of 5 changes nothing
    // here as the first record is at :00; start at :02 to see the alignment.
    let rows: Vec<String> = (2..13)
        .map(|s| format!("10.0.0.1,1,2020-01-01T00:00:{s:02},2020-01-01T00:00:{s:02}"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let mut abs = by_src(g(true));
    let out = abs.feed(SPEC, &rows).end();
    let firsts: Vec<&str> = out
        .iter()
        .map(|l| &l.split(',').nth(2).unwrap()[17..19])
        .collect();
    // Flushes at :05 and :10 (multiples of 5), not :07 and :12.
    assert_eq!(firsts, ["02", "05", "10"]);
    let mut rel = by_src(g(false));
    let out = rel.feed(SPEC, &rows).end();
    let firsts: Vec<&str> = out
        .iter()
        .map(|l| &l.split(',').nth(2).unwrap()[17..19])
        .collect();
    assert_eq!(firsts, ["02", "07", "12"]);
}

#[test]
fn a_full_cache_exports_the_oldest_flow() {
    let mut agg = Aggregator::new(
        prepare(vec![field("SRC_IP", Func::Key), field("BYTES", Func::Sum)]).unwrap(),
        FOREVER,
        2,
    )
    .unwrap();
    let (tm, recs) = records(
        SPEC,
        &[
            "10.0.0.1,1,2020-01-01T00:00:00,2020-01-01T00:00:00",
            "10.0.0.2,1,2020-01-01T00:00:01,2020-01-01T00:00:01",
            "10.0.0.3,1,2020-01-01T00:00:02,2020-01-01T00:00:02",
        ],
    );
    let mut n = 0;
    agg.set_template(tm.spec(), &mut |_: &[u8]| n += 1).unwrap();
    for r in &recs {
        agg.process(r, &mut |_: &[u8]| n += 1).unwrap();
    }
    assert_eq!((n, agg.flows(), agg.stats().evicted), (1, 2, 1));
}

#[test]
fn count_weights_and_format_change_flushes() {
    let mut run = by_src(FOREVER);
    run.feed(
        "ipaddr SRC_IP,uint64 BYTES,uint32 COUNT,time TIME_FIRST,time TIME_LAST",
        &[
            "10.0.0.1,1,5,2020-01-01T00:00:00,2020-01-01T00:00:00",
            "10.0.0.1,1,7,2020-01-01T00:00:00,2020-01-01T00:00:00",
        ],
    );
    assert!(run.out.is_empty());
    run.feed(
        SPEC,
        &["10.0.0.1,1,2020-01-01T00:00:00,2020-01-01T00:00:00"],
    );
    assert_eq!(
        run.out,
        ["10.0.0.1,2,2020-01-01T00:00:00.000000,2020-01-01T00:00:00.000000,12"]
    );
    assert_eq!(
        run.end()[1],
        "10.0.0.1,1,2020-01-01T00:00:00.000000,2020-01-01T00:00:00.000000,1"
    );
}

#[test]
fn string_keys_and_last_strings() {
    let mut run = Run::new(
        vec![field("HOST", Func::Key), field("URL", Func::Last)],
        FOREVER,
    );
    let mut out = run
        .feed(
            "string HOST,string URL,time TIME_FIRST,time TIME_LAST",
            &[
                "a.example,/1,2020-01-01T00:00:00,2020-01-01T00:00:00",
                "b.example,/2,2020-01-01T00:00:00,2020-01-01T00:00:00",
                "a.example,/3,2020-01-01T00:00:00,2020-01-01T00:00:00",
            ],
        )
        .end();
    out.sort();
    assert_eq!(
        out,
        [
            "2020-01-01T00:00:00.000000,2020-01-01T00:00:00.000000,1,\"b.example\",\"/2\"",
            "2020-01-01T00:00:00.000000,2020-01-01T00:00:00.000000,2,\"a.example\",\"/3\"",
        ]
    );
}

#[test]
fn arrays_append_up_to_the_limit_and_sorted_merge_dir_signs_by_direction() {
    let mut fields = biflow_fields();
    fields.truncate(5);
    fields.push(FieldConfig {
        limit: Some(4),
        ..field("LENS", Func::Append)
    });
    fields.push(FieldConfig {
        limit: Some(10),
        sort_key: Some("TIMES".into()),
        ..field("DIRLENS", Func::SortedMergeDir)
    });
    let mut run = Run::new(fields, FOREVER);
    let spec = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint16* LENS,int8* DIRLENS,time* TIMES,time TIME_FIRST,time TIME_LAST";
    let out = run
        .feed(
            spec,
            &[
                "10.0.0.1,10.0.0.9,1,2,6,1 2 3,10 20,2020-01-01T00:00:01 2020-01-01T00:00:03,2020-01-01T00:00:01,2020-01-01T00:00:03",
                "10.0.0.9,10.0.0.1,2,1,6,4 5 6,30,2020-01-01T00:00:02,2020-01-01T00:00:02,2020-01-01T00:00:02",
            ],
        )
        .end();
    assert_eq!(out.len(), 1);
    assert!(out[0].ends_with(",[10|-30|20],[1|2|3|4]"), "{}", out[0]);
}

#[test]
fn config_errors_name_the_field() {
    let err = |fields: Vec<FieldConfig>, spec: &str| {
        let mut a = Aggregator::new(prepare(fields).unwrap(), FOREVER, 16).unwrap();
        a.set_template(spec, &mut |_: &[u8]| {})
            .unwrap_err()
            .to_string()
    };
    let e = err(
        vec![field("BYTES", Func::Sum)],
        "ipaddr SRC_IP,time TIME_FIRST,time TIME_LAST",
    );
    assert!(e.contains("no field `BYTES`"), "{e}");
    let e = err(vec![field("SRC_IP", Func::Sum)], SPEC);
    assert_eq!(
        e,
        "field `SRC_IP` is `ipaddr`: SUM takes numbers (char, int, uint, float, double)"
    );
    let e = err(
        vec![field("BYTES", Func::Sum)],
        "uint64 BYTES,time TIME_LAST",
    );
    assert!(e.contains("`TIME_FIRST` of type `time`"), "{e}");
    let e = Aggregator::new(prepare(vec![]).unwrap(), t(10, 20), 16)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("passive timeout (20 s) is longer"),
        "{e}"
    );
}

#[test]
fn bad_records_are_errors_not_panics() {
    let mut agg = Aggregator::new(
        prepare(vec![field("URL", Func::Last)]).unwrap(),
        FOREVER,
        16,
    )
    .unwrap();
    agg.set_template(
        "string URL,time TIME_FIRST,time TIME_LAST",
        &mut |_: &[u8]| {},
    )
    .unwrap();
    assert!(agg.process(&[1, 2, 3], &mut |_: &[u8]| {}).is_err());
    let mut bad = vec![0u8; 20];
    bad[18] = 9; // URL's length points past the end
    assert!(agg.process(&bad, &mut |_: &[u8]| {}).is_err());
}
