//! Reporter rules, in NEMEA's YAML and in TOML: loading never panics or
//! overflows the stack (address-group files read as one fixed list).
#![no_main]
use libfuzzer_sys::fuzz_target;
use report2idea::RuleSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = |_: &std::path::Path| Ok("10.0.0.0/8\n192.0.2.1\n# comment\n".to_string());
    for yaml in [true, false] {
        if let Ok(rules) = RuleSet::parse_with(text, yaml, &files) {
            let _ = rules.describe();
        }
    }
});
