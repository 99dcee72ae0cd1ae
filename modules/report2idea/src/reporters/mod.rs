//! The conversions of the individual reporters (their binaries are in
//! `src/bin/`), unit-tested with insta snapshots of the IDEA JSON in
//! `snapshots/` (ID and CreateTime redacted; `cargo insta review` after a
//! deliberate change).

pub mod amplification;
pub mod blacklist;
pub mod bruteforce;
pub mod ddos;
pub mod haddrscan;
pub mod hoststats;
pub mod miner;
pub mod vportscan;
