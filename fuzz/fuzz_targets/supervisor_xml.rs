//! NEMEA's XML template with includes read from memory: the input is the
//! template and up to 4 fragments separated by NUL bytes (`/c/a.sup`,
//! `/c/d/b.sup`, …, so file and directory includes both resolve).
//! Expansion, parsing, validation and each module's arguments never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use supervisor::xml::{self, Memory};

const NAMES: [&str; 4] = ["/c/a.sup", "/c/d/b.sup", "/c/d/c.sup", "/c/e/f.sup"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.split('\0');
    let mut files = Memory::default();
    let template = Path::new("/c/sup.xml");
    files.0.insert(template.into(), parts.next().unwrap_or("").into());
    for (name, part) in NAMES.iter().zip(parts) {
        files.0.insert(PathBuf::from(name), part.into());
    }
    if let Ok((cfg, generated)) = xml::load_from(&files, template) {
        assert_eq!(generated.text.lines().count(), generated.origins.len());
        if cfg.validate().is_ok() {
            for (_, m) in cfg.modules() {
                let _ = m.args();
                let _ = m.unix_outputs();
            }
        }
    }
    let _ = xml::parse(text, "t.xml");
});
