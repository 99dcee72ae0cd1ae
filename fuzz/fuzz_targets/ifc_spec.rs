//! Any text as `-i IFC_SPEC`: the grammar, the split into inputs and
//! outputs and the check of every parameter of every interface kind, on
//! both sides, never panic (no interface is opened).
#![no_main]
use libfuzzer_sys::fuzz_target;
use libtrap::spec::{check, parse, parse_mode, split, tcp_input_addr, tcp_output_addr};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_mode(text);
    let Ok(specs) = parse(text) else {
        return;
    };
    for s in &specs {
        let _ = check(s, true);
        let _ = check(s, false);
        let _ = tcp_input_addr(&s.params);
        let _ = tcp_output_addr(&s.params);
        let _ = (
            s.to_string(),
            s.joined_params(),
            s.timeout.map(|t| t.as_duration()),
        );
    }
    let n = specs.len();
    for (i, o) in [
        (Some(1), None),
        (None, Some(1)),
        (Some(n / 2), Some(n - n / 2)),
        (Some(0), Some(n)),
    ] {
        let _ = split(specs.clone(), i, o);
    }
});
