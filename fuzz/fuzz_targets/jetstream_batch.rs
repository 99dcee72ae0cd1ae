//! JetStream batches as a `j:` input receives them (the two format headers
//! and a payload of length-prefixed messages) through the input's real
//! decoding: header parsing, format changes, message splitting and end of
//! stream never panic. The bytes are cut into batches: a header byte (bit 7:
//! no format header; bits 0-6: its length), the format, a 2-byte spec
//! length, the spec, a 2-byte payload length, the payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libtrap::jetstream::RawBatch;
use libtrap::{Input, Required};

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (a, b) = data.split_at(n);
    *data = b;
    a
}

fn len16(data: &mut &[u8]) -> usize {
    let b = take(data, 2);
    match b {
        [x, y] => usize::from(u16::from_be_bytes([*x, *y])),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    let mut batches: Vec<RawBatch> = Vec::new();
    while !rest.is_empty() && batches.len() < 1000 {
        let Some((&h, r)) = rest.split_first() else { break };
        rest = r;
        let format = take(&mut rest, usize::from(h & 0x7f));
        let format = (h & 0x80 == 0).then(|| String::from_utf8_lossy(format).into_owned());
        let n = len16(&mut rest);
        let spec = Some(String::from_utf8_lossy(take(&mut rest, n)).into_owned());
        let n = len16(&mut rest);
        batches.push((format, spec, take(&mut rest, n).to_vec()));
    }
    let mut input = Input::from_jetstream_batches("j:fuzz", batches);
    input.set_required(match ctl & 3 {
        0 => Required::AnyUniRec,
        1 => Required::Raw,
        2 => Required::Json(None),
        _ => Required::UniRec("uint32 A".into()),
    });
    for _ in 0..100_000 {
        match input.recv() {
            Ok(m) => {
                let _ = (m.data.len(), m.format_changed, m.format);
                if input.ended() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = input.received();
});
