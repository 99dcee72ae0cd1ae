//! A rule condition, then (after a NUL) a JSON message: parsing and
//! evaluating never panic or overflow the stack.
#![no_main]
use libfuzzer_sys::fuzz_target;
use report2idea::condition::{Cond, Net};
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let (cond, msg) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(cond) = std::str::from_utf8(cond) else {
        return;
    };
    let mut groups = HashMap::new();
    groups.insert("g".to_string(), vec![Net::parse("10.0.0.0/8").unwrap()]);
    let Ok(c) = Cond::parse(cond, &groups) else {
        return;
    };
    let sample = serde_json::json!({"Category": ["Recon.Scanning"], "FlowCount": 50,
        "Source": [{"IP4": ["10.1.2.3"], "Port": [22]}], "Node": [{"Name": "x"}]});
    let _ = c.eval(&sample);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(msg) {
        let _ = c.eval(&v);
    }
    let _ = format!("{c:?}");
});
