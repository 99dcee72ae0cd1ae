//! The conversions of the individual reporters (their binaries are in
//! `src/bin/`), unit-tested with golden IDEA JSON (ID and CreateTime
//! redacted).

pub mod amplification;
pub mod blacklist;
pub mod bruteforce;
pub mod ddos;
pub mod haddrscan;
pub mod hoststats;
pub mod miner;
pub mod vportscan;
