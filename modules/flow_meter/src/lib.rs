//! flow_meter: packets to bidirectional flow records, reproducing the flows of
//! CESNET's ipfixprobe (basic template).
//!
//! The pipeline follows ipfixprobe's split: input (libpcap, in `main.rs`) →
//! [`parser`] → [`cache`] → [`plugins`] → [`export`] (UniRec over any
//! libtrap-rs output) and [`ipfix`] (IPFIX messages). Everything here is
//! sans-IO except the IPFIX transport, [`ipfix::net`]: time comes from packets.
#![forbid(unsafe_code)]

pub mod cache;
pub mod export;
pub mod fuzzing;
pub mod ipfix;
pub mod parser;
pub mod pcapfile;
pub mod plugins;
pub mod synth;

/// Parses `-t ACTIVE:INACTIVE` (seconds; fractions are cut to whole seconds as
/// the cache compares whole seconds) or `default`.
pub fn parse_timeouts(s: &str) -> Result<(u64, u64), String> {
    if s == "default" {
        return Ok((300, 30));
    }
    let (a, i) = s
        .split_once(':')
        .ok_or_else(|| format!("timeouts `{s}`: expected ACTIVE:INACTIVE"))?;
    let num = |v: &str| -> Result<u64, String> {
        let f: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("timeouts `{s}`: `{v}` is not a number"))?;
        if f.is_finite() && f >= 0.0 {
            Ok(f as u64)
        } else {
            Err(format!("timeouts `{s}`: `{v}` is out of range"))
        }
    };
    Ok((num(a)?, num(i)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeouts("default"), Ok((300, 30)));
        assert_eq!(parse_timeouts("60.5:10"), Ok((60, 10)));
        assert!(parse_timeouts("60").is_err());
        assert!(parse_timeouts("a:1").is_err());
        assert!(parse_timeouts("-1:1").is_err());
    }
}
