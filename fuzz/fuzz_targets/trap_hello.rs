//! A hello (8 bytes + spec) from any bytes: parsing, the format it
//! announces and libtrap's negotiation against every kind of requirement
//! never panic; a format's own hello parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libtrap::format::{negotiate, HelloHeader, HELLO_SIZE};
use libtrap::{DataFormat, Required};

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<HELLO_SIZE>() else {
        return;
    };
    let Ok(header) = HelloHeader::parse(head) else {
        return;
    };
    let spec = &rest[..rest.len().min(header.spec_len)];
    let Ok(Some(format)) = header.into_format(spec) else {
        return;
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    for required in [
        Required::Raw,
        Required::AnyUniRec,
        Required::UniRec(text.clone()),
        Required::UniRec(format.spec().to_string()),
        Required::Json(None),
        Required::Json(Some(text)),
    ] {
        let _ = negotiate(&required, &format);
    }
    let hello = format.hello();
    let back = HelloHeader::parse(hello[..HELLO_SIZE].try_into().unwrap()).unwrap();
    assert_eq!(
        back.into_format(&hello[HELLO_SIZE..]).unwrap(),
        Some(format)
    );
    let _ = DataFormat::unknown_hello();
});
