//! A downloaded body under each list format (plaintext, csv, JSON with
//! filter, port and prefix keys, one address family): checking and parsing
//! never panic, and the detector and repository files can be written.
#![no_main]
use bl_downloader::{detector_files, parse_list, repo_files, ListConfig};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let base = ListConfig::new(1, "fuzz".into(), "x".into());
    let mut configs = vec![base.clone()];
    for col in [1, 2, 3] {
        let mut c = base.clone();
        c.format = "csv".into();
        c.csv_col = Some(col);
        configs.push(c);
    }
    let mut json = base.clone();
    json.format = "json".into();
    json.json_address_key = Some("ip".into());
    configs.push(json.clone());
    json.json_port_key = Some("port".into());
    json.json_prefix_key = Some("prefix".into());
    json.filter_key = Some("status".into());
    json.filter_value = Some("online".into());
    json.allow_empty = true;
    configs.push(json);
    for v in [4, 6] {
        let mut c = base.clone();
        c.ip_version = Some(v);
        c.allow_empty = true;
        configs.push(c);
    }
    let mut lists = BTreeMap::new();
    for (i, c) in configs.iter().enumerate() {
        if let Ok(ents) = parse_list(&text, c) {
            lists.insert(i as u8 + 1, ents);
        }
    }
    let _ = detector_files(&lists);
    let names = lists.keys().map(|&id| (id, format!("l/{id}"))).collect();
    let _ = repo_files(&lists, &names);
});
