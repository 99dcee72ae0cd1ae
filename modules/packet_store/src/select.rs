//! Which stored packets `packet_store query` exports.

use std::net::IpAddr;

use packet_capture::wire;
use unirec::UrTime;

/// A time range and at most two hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// One host: packets from or to it. Two: packets between them (either
    /// direction).
    pub hosts: Vec<IpAddr>,
}

/// A time given as UniRec text (`2026-12-03T14:00:00[.ffffff]`, UTC) or as
/// seconds since the epoch (`1764770400.25`), in ns.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        if (0.0..9.2e9).contains(&secs) {
            return Some((secs * 1e9).round() as i64);
        }
        return None;
    }
    UrTime::parse(s).map(time_ns)
}

/// A UniRec time in ns since the epoch.
pub fn time_ns(t: UrTime) -> i64 {
    i64::from(t.secs()) * 1_000_000_000 + i64::from(t.nanos())
}

impl Selection {
    /// Whether to export this frame (the time range is the query's).
    pub fn matches(&self, frame: &[u8]) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let Some(ip) = wire::parse(frame).ip else {
            return false;
        };
        match self.hosts.as_slice() {
            [a] => ip.src == *a || ip.dst == *a,
            [a, b] => (ip.src == *a && ip.dst == *b) || (ip.src == *b && ip.dst == *a),
            _ => false,
        }
    }

    pub fn range(&self) -> (i64, i64) {
        (
            self.from_ns.unwrap_or(i64::MIN),
            self.to_ns.unwrap_or(i64::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0]);
        f.extend(src);
        f.extend(dst);
        f
    }

    #[test]
    fn host_pairs_match_both_directions_only() {
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let ab = frame([198, 51, 100, 1], [198, 51, 100, 2]);
        let ba = frame([198, 51, 100, 2], [198, 51, 100, 1]);
        let ac = frame([198, 51, 100, 1], [203, 0, 113, 3]);
        let pair = Selection {
            hosts: vec![a, b],
            ..Default::default()
        };
        assert!(pair.matches(&ab) && pair.matches(&ba) && !pair.matches(&ac));
        let one = Selection {
            hosts: vec![a],
            ..Default::default()
        };
        assert!(one.matches(&ac) && one.matches(&ba));
        assert!(!one.matches(&ac[..20]), "no IP header, no match");
        assert!(Selection::default().matches(b""));
    }

    #[test]
    fn times_in_both_spellings() {
        assert_eq!(parse_time("1.5"), Some(1_500_000_000));
        assert_eq!(
            parse_time("1970-01-01T00:00:02.000001"),
            Some(2_000_001_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-1"), None);
    }
}
