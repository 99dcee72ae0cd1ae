//! IDEA messages (https://idea.cesnet.cz) as the NEMEA reporters write them.
//!
//! Only the keys the reporters fill are modelled; absent ones are not
//! serialized. Key order follows the struct order (serde), which keeps the
//! JSON stable for tests.

use serde::{Serialize, Serializer};
use std::net::IpAddr;
use unirec::time::civil_from_days;
use unirec::{UrIp, UrTime};

/// An IDEA timestamp: whole Unix seconds, written as `%Y-%m-%dT%H:%M:%SZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdeaTime(pub i64);

impl IdeaTime {
    /// From a UniRec time (the fraction is truncated, as `getIDEAtime`).
    pub fn from_ur(t: UrTime) -> IdeaTime {
        IdeaTime(i64::from(t.secs()))
    }

    /// From a float epoch (JSON aggregators write `ts_first` as float).
    pub fn from_f64(t: f64) -> IdeaTime {
        IdeaTime(t.floor() as i64)
    }

    /// The wall clock now.
    pub fn now() -> IdeaTime {
        IdeaTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        )
    }
}

impl std::fmt::Display for IdeaTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = self.0.div_euclid(86_400);
        let sod = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl Serialize for IdeaTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `AggrWin` text: `HH:MM:SS`, or `<days>DHH:MM:SS` from one day on.
pub fn aggr_win(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}D{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Parses `HH:MM:SS` (or `<days>DHH:MM:SS`) into seconds.
pub fn parse_aggr_win(text: &str) -> Option<u64> {
    let (days, rest) = match text.split_once(['D', 'd']) {
        Some((d, r)) => (d.trim().parse::<u64>().ok()?, r),
        None => (0, text),
    };
    let mut parts = rest.split(':');
    let h: u64 = parts.next()?.trim().parse().ok()?;
    let m: u64 = parts.next()?.trim().parse().ok()?;
    let s: u64 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// A `Source` or `Target` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proto: Vec<String>,
    #[serde(rename = "IP4", skip_serializing_if = "Vec::is_empty")]
    pub ip4: Vec<String>,
    #[serde(rename = "IP6", skip_serializing_if = "Vec::is_empty")]
    pub ip6: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<u16>,
    #[serde(rename = "Type", skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Vec<String>>,
    #[serde(rename = "URL", skip_serializing_if = "Option::is_none")]
    pub url: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imprecise: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flow_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_packet_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_byte_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_flow_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_packet_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_byte_count: Option<u64>,
}

impl Endpoint {
    /// An endpoint with these protocol names (`["tcp"]`, `["udp", "domain"]`).
    pub fn with_proto(proto: &[&str]) -> Endpoint {
        Endpoint {
            proto: proto.iter().map(|p| p.to_string()).collect(),
            ..Endpoint::default()
        }
    }

    /// Appends an address to `IP4` or `IP6` by its family (`setAddr`).
    pub fn add_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.ip4.push(a.to_string()),
            IpAddr::V6(a) => self.ip6.push(a.to_string()),
        }
    }

    /// Appends a UniRec address.
    pub fn add_ur_ip(&mut self, ip: UrIp) {
        self.add_ip(ip.to_std());
    }

    /// Builder form of [`add_ur_ip`](Self::add_ur_ip).
    pub fn ip(mut self, ip: UrIp) -> Endpoint {
        self.add_ur_ip(ip);
        self
    }
}

/// True for 0.0.0.0 / :: (NEMEA reporters treat them as "no address").
pub fn is_unset(ip: UrIp) -> bool {
    match ip.to_std() {
        IpAddr::V4(a) => a.is_unspecified(),
        IpAddr::V6(a) => a.is_unspecified(),
    }
}

/// The `Node` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    pub name: String,
    #[serde(rename = "SW")]
    pub sw: Vec<String>,
    #[serde(rename = "Type", skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggr_win: Option<String>,
}

/// One IDEA message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Idea {
    pub format: &'static str,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alt_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<IdeaTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<IdeaTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cease_time: Option<IdeaTime>,
    pub detect_time: IdeaTime,
    pub category: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub r#ref: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<Endpoint>,
    pub node: Vec<Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_count: Option<u64>,
}

impl Idea {
    /// A message with a fresh UUID4, `Format` IDEA0, CreateTime = now and
    /// one Node (`SW ["Nemea", sw]`, the given Type); the runner fills in
    /// Node.Name.
    /// NEMEA's alert window: EventTime = first, CeaseTime = last (DetectTime
    /// is set by [`Idea::new`], usually to the same last time).
    pub fn set_window(&mut self, first: IdeaTime, last: IdeaTime) {
        self.event_time = Some(first);
        self.cease_time = Some(last);
    }

    pub fn new(detect_time: IdeaTime, category: &str, sw: &str, node_type: &[&str]) -> Idea {
        Idea {
            format: "IDEA0",
            id: uuid::Uuid::new_v4().to_string(),
            alt_names: Vec::new(),
            create_time: Some(IdeaTime::now()),
            event_time: None,
            cease_time: None,
            detect_time,
            category: vec![category.to_string()],
            description: None,
            note: None,
            r#ref: Vec::new(),
            source: Vec::new(),
            target: Vec::new(),
            node: vec![Node {
                name: String::new(),
                sw: vec!["Nemea".to_string(), sw.to_string()],
                kind: node_type.iter().map(|t| t.to_string()).collect(),
                aggr_win: None,
            }],
            flow_count: None,
            packet_count: None,
            byte_count: None,
            conn_count: None,
        }
    }

    /// The times that must lie in `[CreateTime − 1 day, CreateTime]` unless
    /// `-D` is given. Returns the first one that does not.
    pub fn check_times(&self, now: IdeaTime) -> Result<(), String> {
        let lo = now.0 - 86_400;
        for (name, t) in [
            ("EventTime", self.event_time),
            ("CeaseTime", self.cease_time),
            ("DetectTime", Some(self.detect_time)),
        ] {
            if let Some(t) = t {
                if t.0 < lo || t.0 > now.0 {
                    return Err(format!("{name} {t} outside [{}, {now}]", IdeaTime(lo)));
                }
            }
        }
        Ok(())
    }

    /// The message as one line of JSON.
    pub fn to_json(&self) -> serde_json::Value {
        // Serialization of these plain types cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// IANA protocol number to the lower-case IDEA name (hoststats2idea's table
/// plus a few common ones).
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        58 => "ipv6-icmp",
        132 => "sctp",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text() {
        assert_eq!(IdeaTime(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(IdeaTime(1_714_557_958).to_string(), "2024-05-01T10:05:58Z");
        assert_eq!(
            IdeaTime::from_ur(UrTime::from_secs_millis(1_714_557_958, 999)).to_string(),
            "2024-05-01T10:05:58Z"
        );
    }

    #[test]
    fn aggr_win_text() {
        assert_eq!(aggr_win(300), "00:05:00");
        assert_eq!(aggr_win(86_400 + 61), "1D00:01:01");
        assert_eq!(parse_aggr_win("00:05:00"), Some(300));
        assert_eq!(parse_aggr_win("1D00:01:01"), Some(86_461));
        assert_eq!(parse_aggr_win("5"), None);
        assert_eq!(parse_aggr_win("00:61:00"), None);
    }

    #[test]
    fn json_shape() {
        let mut i = Idea::new(IdeaTime(100), "Recon.Scanning", "x", &["Flow"]);
        i.id = "ID".into();
        i.create_time = None;
        i.source
            .push(Endpoint::with_proto(&["tcp"]).ip(UrIp::parse("10.0.0.1").unwrap()));
        i.target
            .push(Endpoint::with_proto(&["tcp"]).ip(UrIp::parse("2001:db8::1").unwrap()));
        i.flow_count = Some(3);
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"Format":"IDEA0","ID":"ID","DetectTime":"1970-01-01T00:01:40Z","Category":["Recon.Scanning"],"Source":[{"Proto":["tcp"],"IP4":["10.0.0.1"]}],"Target":[{"Proto":["tcp"],"IP6":["2001:db8::1"]}],"Node":[{"Name":"","SW":["Nemea","x"],"Type":["Flow"]}],"FlowCount":3}"#
        );
    }

    #[test]
    fn timestamp_window() {
        let mut i = Idea::new(IdeaTime(100_000), "X", "x", &[]);
        assert!(i.check_times(IdeaTime(100_000)).is_ok());
        assert!(i.check_times(IdeaTime(99_999)).is_err());
        i.event_time = Some(IdeaTime(100_000 - 86_401));
        assert!(i
            .check_times(IdeaTime(100_000))
            .unwrap_err()
            .contains("EventTime"));
    }
}
