//! The metrics port's HTTP request head: complete or not, too large, bad,
//! or a request line; never a panic, and never complete beyond 8 KiB.
#![no_main]
use libfuzzer_sys::fuzz_target;
use supervisor::net::{http_refusal, parse_http_head, HttpHead, MAX_HTTP_HEAD};

/// Where the head ends (after its empty line), if it does.
fn end(data: &[u8]) -> Option<usize> {
    let at = |n: &[u8]| data.windows(n.len()).position(|w| w == n).map(|i| i + n.len());
    match (at(b"\r\n\r\n"), at(b"\n\n")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fuzz_target!(|data: &[u8]| {
    for eof in [false, true] {
        let head = parse_http_head(data, eof);
        let _ = http_refusal(&head);
        match head {
            HttpHead::Request { method, target } => {
                assert!(end(data).is_some_and(|e| e <= MAX_HTTP_HEAD) || eof);
                assert!(!method.is_empty() && !target.is_empty());
            }
            HttpHead::Incomplete => assert!(!eof && data.len() <= MAX_HTTP_HEAD),
            _ => {}
        }
    }
});
