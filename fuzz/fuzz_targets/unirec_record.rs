//! A template spec and record bytes from the input: validation, every
//! accessor and the logger text never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use unirec::{RecordRef, Template};

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&b| b == 0) else { return };
    let Ok(spec) = std::str::from_utf8(&data[..split]) else { return };
    let Ok(t) = Template::parse(spec) else { return };
    if let Ok(r) = RecordRef::new_checked(&t, &data[split + 1..]) {
        let mut out = Vec::new();
        unirec::text::write_record(&r, b',', &mut out);
        for i in 0..t.len() + 2 {
            let _ = r.value(i);
        }
    }
});
