//! The bytes of one `u:`/`t:` connection (hello, then 14-byte-header
//! containers) through a socket input's real decoding, read in chunks of
//! any size: negotiation, container headers, message splitting, sequence
//! accounting and end of stream never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libtrap::{Input, Required};
use std::io::{Cursor, Read};

/// Returns at most `chunk` bytes per read (partial headers and payloads).
struct Chunked(Cursor<Vec<u8>>, usize);

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x3f) + 1;
    let mut input = Input::from_stream_reader(
        "u:fuzz",
        Box::new(Chunked(Cursor::new(bytes.to_vec()), chunk)),
    );
    input.set_required(match ctl >> 6 {
        0 => Required::AnyUniRec,
        1 => Required::Raw,
        2 => Required::Json(None),
        _ => Required::UniRec("uint32 A".into()),
    });
    for _ in 0..100_000 {
        match input.recv() {
            Ok(m) if m.is_eos() => break,
            Ok(m) => {
                let _ = (m.data.len(), m.format_changed, m.format);
            }
            Err(_) => break,
        }
    }
    let _ = (input.received(), input.missed());
});
