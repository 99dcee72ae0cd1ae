//! Arbitrary records through merger's projection, the aggregation engine
//! (every function, small timeouts so flows expire and evict) and the
//! anonymizer never panic, and whatever they send is a valid record of the
//! template they announce. The rest of the input also goes to the config
//! parsers (biflow_aggregator's XML, link_traffic's links, the anonymizer
//! key).
#![no_main]
use biflow_aggregator::{prepare, Aggregator, FieldConfig, Func, Global, Order, Timeouts};
use libfuzzer_sys::fuzz_target;
use unirec::{RecordRef, Template};

const SPECS: [&str; 3] = [
    "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint32 PACKETS_REV,uint64 BYTES,time TIME_FIRST,time TIME_LAST",
    "ipaddr SRC_IP,time TIME_FIRST,time TIME_LAST,uint32 COUNT,int16 I,double D,macaddr MAC,char C,string SIP_VIA,string URL,uint16* LENS,int8* DIRS,time* TIMES",
    "ipaddr DST_IP,uint64 BYTES,string SIP_CALL_ID",
];

fn fields(sel: u8) -> Vec<FieldConfig> {
    let f = |name: &str, func: Func| FieldConfig::new(name, func);
    match sel % 3 {
        0 => {
            let mut v: Vec<FieldConfig> = [
                ("SRC_IP", "DST_IP"),
                ("DST_IP", "SRC_IP"),
                ("SRC_PORT", "DST_PORT"),
                ("DST_PORT", "SRC_PORT"),
            ]
            .iter()
            .map(|(n, r)| FieldConfig {
                reverse_name: Some(r.to_string()),
                ..f(n, Func::Key)
            })
            .collect();
            v.push(f("PROTOCOL", Func::Key));
            v.push(FieldConfig {
                reverse_name: Some("PACKETS_REV".into()),
                ..f("PACKETS", Func::Sum)
            });
            v.push(f("BYTES", Func::Avg));
            v
        }
        1 => vec![
            f("SRC_IP", Func::Key),
            f("I", Func::Min),
            f("D", Func::Max),
            f("MAC", Func::FirstNonEmpty),
            f("C", Func::BitOr),
            FieldConfig {
                limit: Some(40),
                delimiter: b'|',
                ..f("SIP_VIA", Func::Append)
            },
            f("URL", Func::UniqueCount),
            FieldConfig {
                limit: Some(7),
                ..f("LENS", Func::Append)
            },
            FieldConfig {
                limit: Some(9),
                sort_key: Some("TIMES".into()),
                order: Order::Descending,
                ..f("DIRS", Func::SortedMergeDir)
            },
        ],
        _ => vec![
            f("SIP_CALL_ID", Func::Key),
            f("BYTES", Func::BitAnd),
            f("DST_IP", Func::LastNonEmpty),
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, flags, rest @ ..] = data else {
        return;
    };
    let t = Template::parse(SPECS[*sel as usize % SPECS.len()]).expect("our spec");
    let other = Template::parse(SPECS[(*sel as usize / 3) % SPECS.len()]).expect("our spec");
    let mut recs = Vec::new();
    let mut at = rest;
    while let [a, b, more @ ..] = at {
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(more.len());
        recs.push(&more[..n]);
        at = &more[n..];
    }

    let p = merger::Projection::new(&t, &other);
    let mut buf = Vec::new();
    for r in &recs {
        if p.project(&t, r, &mut buf).is_ok() {
            RecordRef::new_checked(&other, &buf).expect("a projected record fits its template");
        }
    }

    let timeouts = Timeouts {
        active: u64::from(flags & 7),
        passive: u64::from(flags >> 3 & 3).min(u64::from(flags & 7)),
        global: (flags & 0x20 != 0).then_some(Global {
            interval: 1 + u64::from(flags >> 6),
            absolute: flags & 0x80 != 0,
        }),
    };
    if let Ok(f) = prepare(fields(*sel)) {
        if let Ok(mut agg) = Aggregator::new(f, timeouts, 1 + usize::from(flags % 5)) {
            let mut out: Vec<Vec<u8>> = Vec::new();
            if let Ok(out_t) = agg.set_template(t.spec(), &mut |r: &[u8]| out.push(r.to_vec())) {
                let out_t = out_t.clone();
                for r in &recs {
                    let _ = agg.process(r, &mut |r: &[u8]| out.push(r.to_vec()));
                }
                agg.flush(&mut |r: &[u8]| out.push(r.to_vec()));
                for r in &out {
                    RecordRef::new_checked(&out_t, r)
                        .expect("an aggregated record fits its template");
                }
            }
        }
    }

    let key = [*flags; 32];
    let pan = anonymizer::CryptoPan::new(
        &key,
        if flags & 1 == 0 {
            anonymizer::Prf::Aes
        } else {
            anonymizer::Prf::Murmur
        },
    );
    let plan = anonymizer::Plan::new(&t, flags & 2 != 0, flags & 4 != 0);
    let mut scratch = anonymizer::Scratch::default();
    for r in &recs {
        if anonymizer::transform_record(&pan, &t, &plan, r, flags & 8 != 0, &mut scratch, &mut buf)
            .is_ok()
        {
            RecordRef::new_checked(&t, &buf).expect("an anonymised record fits its template");
        }
    }

    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = biflow_aggregator::parse_xml(text, "s");
        let _ = link_traffic::parse_config(text);
        let _ = anonymizer::key_from_file_text(text);
        let mut out = Vec::new();
        let _ = anonymizer::transform_text(&pan, text.as_bytes(), false, &mut out);
    }
});
