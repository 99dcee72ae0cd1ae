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

/// Reading the JSON events of the aggregators.
pub(crate) mod json {
    use crate::IdeaTime;
    use serde_json::Value;
    use unirec::UrIp;

    pub fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
        v.get(key).ok_or_else(|| format!("no `{key}` in the event"))
    }

    pub fn ip(text: &str) -> Result<UrIp, String> {
        UrIp::parse(text).ok_or_else(|| format!("`{text}` is not an IP address"))
    }

    /// A float epoch time (`ts_first`, `ts_last`).
    pub fn time(v: &Value, key: &str) -> Result<IdeaTime, String> {
        field(v, key)?
            .as_f64()
            .map(IdeaTime::from_f64)
            .ok_or_else(|| format!("`{key}` is not a number"))
    }

    pub fn uint(v: &Value, key: &str) -> Result<u64, String> {
        field(v, key)?
            .as_u64()
            .ok_or_else(|| format!("`{key}` is not a whole number"))
    }

    pub fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
        field(v, key)?
            .as_str()
            .ok_or_else(|| format!("`{key}` is not a string"))
    }
}
