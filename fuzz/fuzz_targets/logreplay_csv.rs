//! Any text as a logreplay CSV: the header (template, column order, time
//! column, duplicate names), every data line through the column splitter
//! and the text parser of each field type, and the record built from it
//! never panic; a record that builds is a valid UniRec record.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logreplay::{pace, split_columns, Header};
use unirec::{RecordBuilder, RecordRef};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return;
    };
    let _ = split_columns(first);
    let Ok(header) = Header::parse(first) else {
        return;
    };
    let mut builder = RecordBuilder::new(header.template());
    let mut record = Vec::new();
    let mut last = None;
    for line in lines {
        let _ = split_columns(line);
        let Ok(time) = header.fill(&mut builder, line) else {
            continue;
        };
        if let Some(t) = time {
            let _ = pace(last, t);
            last = Some(t);
        }
        record.clear();
        if builder.finish(&mut record).is_ok() {
            let r = RecordRef::new_checked(header.template(), &record);
            assert!(r.is_ok(), "a built record does not validate: {r:?}");
            if let Ok(r) = r {
                let mut out = Vec::new();
                unirec::text::write_record(&r, b',', &mut out);
            }
        }
    }
});
