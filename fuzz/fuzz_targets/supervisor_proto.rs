//! The client protocol: a request line as the daemon parses it (and the
//! menu's selections), an answer as supcli splits it, and a module's service
//! JSON as the supervisor reads it. Nothing panics; a parsed request is sent
//! as one line that parses again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use supervisor::proto::{self, Request};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(req) = Request::parse(&text) {
        let line = req.line();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
        let again = Request::parse(&line).expect("a sent request parses");
        assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&req));
        if let Request::Cmd(_, args) = &req {
            let _ = proto::split_wait(args);
        }
    }
    let (_, rest) = proto::split_answer(&text);
    assert!(rest.len() <= text.len());
    let _ = proto::refusal(&text);
    let _ = supervisor::daemon::parse_selection(&text);
    let _ = supervisor::status::IfcStats::parse(&text);
});
