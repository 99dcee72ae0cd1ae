//! The HTTP request heads of the metrics port and the status page: complete
//! or not, too large, bad, or a request line; then the status page's routing
//! of the target, its percent-decoding and the header checks of a control
//! request. Never a panic, and never complete beyond 8 KiB.
#![no_main]
use libfuzzer_sys::fuzz_target;
use supervisor::net::{
    http_header, http_refusal, http_refusal_for, parse_http_head, HttpHead, MAX_HTTP_HEAD,
};
use supervisor::web::{control_allowed, percent_decode, route, Route};

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
        let _ = http_refusal_for(&head, &["GET", "POST"]);
        match head {
            HttpHead::Request { method, target } => {
                assert!(end(data).is_some_and(|e| e <= MAX_HTTP_HEAD) || eof);
                assert!(!method.is_empty() && !target.is_empty());
                if let Route::Control { name, .. } = route(method, target) {
                    assert!(!name.is_empty() && name.len() <= 256);
                }
                let _ = control_allowed(data);
                let _ = http_header(data, "Host");
            }
            HttpHead::Incomplete => assert!(!eof && data.len() <= MAX_HTTP_HEAD),
            _ => {}
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = percent_decode(s);
    }
});
