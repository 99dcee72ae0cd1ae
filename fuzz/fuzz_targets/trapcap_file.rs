//! Any bytes as one to three `.trapcap` files read as one stream by the
//! real `f:` input: hellos, block headers, cut blocks, messages and the
//! end-of-stream rules never panic, and an end of stream is only ever
//! returned at the end of the last file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libtrap::Input;
use std::io::{Cursor, Read};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    // ctl: number of files (1-3) and where the first two end.
    let n = usize::from(ctl % 3) + 1;
    let mut files: Vec<(String, Box<dyn Read + Send>)> = Vec::new();
    for i in 0..n {
        let cut = if i + 1 == n {
            rest.len()
        } else {
            let share = usize::from(ctl >> 2) + 1;
            (rest.len() * share / 64).min(rest.len())
        };
        let (file, tail) = rest.split_at(cut);
        files.push((
            format!("f{i}.trapcap"),
            Box::new(Cursor::new(file.to_vec())),
        ));
        rest = tail;
    }
    let mut input = Input::from_trapcap_readers("f:fuzz", files);
    for _ in 0..100_000 {
        match input.recv() {
            Ok(m) if m.is_eos() => {
                // Nothing is left to read after an end of stream, and every
                // further receive says end of stream again.
                let again = input.recv().map(|m| m.is_eos());
                assert!(!matches!(again, Ok(false)), "data after the end of stream");
                break;
            }
            Ok(m) => {
                let _ = (m.data.len(), m.format_changed);
            }
            Err(_) => break,
        }
    }
});
