//! The native TOML configuration: parsing (with its line:column errors),
//! validation and each module's arguments never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match supervisor::toml_cfg::parse(text, "c.toml") {
        Ok(cfg) => {
            if cfg.validate().is_ok() {
                for (_, m) in cfg.modules() {
                    let _ = m.args();
                    let _ = m.unix_outputs();
                }
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
