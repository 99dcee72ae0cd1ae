//! The configuration file (`KEY = VALUE`, `#` comments) and the whitelist.

use crate::Service;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: {detail}")]
    Line {
        file: String,
        line: usize,
        detail: String,
    },
}

/// An inclusive range of packets and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min_packets: u32,
    pub max_packets: u32,
    pub min_bytes: u64,
    pub max_bytes: u64,
}

impl Range {
    pub const fn new(p: (u32, u32), b: (u64, u64)) -> Range {
        Range {
            min_packets: p.0,
            max_packets: p.1,
            min_bytes: b.0,
            max_bytes: b.1,
        }
    }
    pub fn contains(&self, packets: u32, bytes: u64) -> bool {
        (self.min_packets..=self.max_packets).contains(&packets)
            && (self.min_bytes..=self.max_bytes).contains(&bytes)
    }
}

/// Settings of one service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceConfig {
    pub list_size: usize,
    pub list_threshold: u32,
    pub record_timeout: u32,
    pub host_timeout: u32,
    pub report_timeout: u32,
    pub attack_timeout: u32,
    pub incoming: Range,
    /// `None` for TELNET: outgoing flows are judged by the server profile.
    pub outgoing: Option<Range>,
}

impl ServiceConfig {
    fn defaults(incoming: Range, outgoing: Option<Range>) -> ServiceConfig {
        ServiceConfig {
            list_size: 1000,
            list_threshold: 30,
            record_timeout: 1800,
            host_timeout: 4200,
            report_timeout: 300,
            attack_timeout: 600,
            incoming,
            outgoing,
        }
    }
}

/// The whole configuration (defaults of the C module).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub check_for_report_timeout: u32,
    pub check_for_delete_timeout: u32,
    pub attack_min_events_to_report: u32,
    /// Percent of matched flows since the last report below which an
    /// attack is over.
    pub attack_min_ratio_to_keep_tracking_host: f64,
    pub ignore_first_send: bool,
    /// C reports the configured threshold as EVENT_SCALE of a first report;
    /// false (default) reports the real number of matched flows.
    pub first_scale_is_threshold: bool,
    /// SSH, RDP, TELNET.
    pub services: [ServiceConfig; 3],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            check_for_report_timeout: 60,
            check_for_delete_timeout: 60,
            attack_min_events_to_report: 10,
            attack_min_ratio_to_keep_tracking_host: 10.0,
            ignore_first_send: false,
            first_scale_is_threshold: false,
            services: [
                ServiceConfig::defaults(
                    Range::new((11, 30), (1000, 5000)),
                    Some(Range::new((11, 50), (1000, 11000))),
                ),
                ServiceConfig::defaults(
                    Range::new((20, 100), (2200, 8001)),
                    Some(Range::new((30, 190), (3000, 180_000))),
                ),
                ServiceConfig::defaults(Range::new((9, 50), (450, 3000)), None),
            ],
        }
    }
}

impl Config {
    pub fn service(&self, s: Service) -> &ServiceConfig {
        &self.services[s as usize]
    }

    /// Reads `KEY = VALUE` lines over the defaults. Unknown keys and bad
    /// values are errors naming the line.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        for (n, raw) in text.lines().enumerate() {
            let err = |detail: String| ConfigError::Line {
                file: file.to_string(),
                line: n + 1,
                detail,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(err(format!("`{line}` is not KEY = VALUE")));
            };
            let (k, v) = (k.trim(), v.trim());
            let num = || -> Result<u64, ConfigError> {
                v.parse::<u64>()
                    .map_err(|_| err(format!("{k}: `{v}` is not a whole number")))
            };
            let u32v = || -> Result<u32, ConfigError> {
                u32::try_from(num()?).map_err(|_| err(format!("{k}: `{v}` is too large")))
            };
            match k {
                "GENERAL_CHECK_FOR_REPORT_TIMEOUT" => c.check_for_report_timeout = u32v()?,
                "GENERAL_CHECK_FOR_DELETE_TIMEOUT" => c.check_for_delete_timeout = u32v()?,
                "GENERAL_ATTACK_MIN_EVENTS_TO_REPORT" => c.attack_min_events_to_report = u32v()?,
                "GENERAL_ATTACK_MIN_RATIO_TO_KEEP_TRACKING_HOST" => {
                    c.attack_min_ratio_to_keep_tracking_host = v
                        .parse()
                        .map_err(|_| err(format!("{k}: `{v}` is not a number")))?
                }
                "GENERAL_IGNORE_FIRST_SEND" => c.ignore_first_send = num()? != 0,
                _ => {
                    let (svc, rest) = k
                        .split_once('_')
                        .ok_or_else(|| err(format!("unknown key {k}")))?;
                    let i = match svc {
                        "SSH" => 0,
                        "RDP" => 1,
                        "TELNET" => 2,
                        _ => return Err(err(format!("unknown key {k}"))),
                    };
                    let s = &mut c.services[i];
                    match rest {
                        "LIST_SIZE" => s.list_size = u32v()?.max(1) as usize,
                        "LIST_THRESHOLD" => s.list_threshold = u32v()?,
                        "RECORD_TIMEOUT" => s.record_timeout = u32v()?,
                        "HOST_TIMEOUT" => s.host_timeout = u32v()?,
                        "REPORT_TIMEOUT" => s.report_timeout = u32v()?,
                        "ATTACK_TIMEOUT" => s.attack_timeout = u32v()?,
                        _ => {
                            let r = rest
                                .strip_prefix("BRUTEFORCE_")
                                .ok_or_else(|| err(format!("unknown key {k}")))?;
                            let (dir, what) = r
                                .split_once('_')
                                .ok_or_else(|| err(format!("unknown key {k}")))?;
                            let range = match dir {
                                "INC" => &mut s.incoming,
                                "OUT" => s
                                    .outgoing
                                    .as_mut()
                                    .ok_or_else(|| err(format!("unknown key {k}")))?,
                                _ => return Err(err(format!("unknown key {k}"))),
                            };
                            match what {
                                "MIN_PACKETS" => range.min_packets = u32v()?,
                                "MAX_PACKETS" => range.max_packets = u32v()?,
                                "MIN_BYTES" => range.min_bytes = num()?,
                                "MAX_BYTES" => range.max_bytes = num()?,
                                _ => return Err(err(format!("unknown key {k}"))),
                            }
                        }
                    }
                }
            }
        }
        Ok(c)
    }
}

/// Which side of a flow a whitelist rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
    Both,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhitelistRule {
    pub side: Side,
    pub addr: IpAddr,
    pub prefix: u8,
    /// Inclusive port ranges; empty = every port.
    pub ports: Vec<(u16, u16)>,
}

impl WhitelistRule {
    fn matches(&self, ip: IpAddr, port: u16) -> bool {
        let net_ok = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        };
        net_ok
            && (self.ports.is_empty() || self.ports.iter().any(|&(a, b)| (a..=b).contains(&port)))
    }
}

/// Source/destination whitelist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Whitelist {
    pub rules: Vec<WhitelistRule>,
}

impl Whitelist {
    /// Lines `[src|dst] IP[/prefix][/ports]`, ports a comma list of ports and
    /// `a-b` ranges; `#` starts a comment.
    pub fn parse(text: &str, file: &str) -> Result<Whitelist, ConfigError> {
        let mut rules = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let err = |detail: String| ConfigError::Line {
                file: file.to_string(),
                line: n + 1,
                detail,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (side, rest) = match line.split_once(char::is_whitespace) {
                Some(("src", r)) => (Side::Src, r.trim()),
                Some(("dst", r)) => (Side::Dst, r.trim()),
                _ => (Side::Both, line),
            };
            let mut parts = rest.split('/');
            let ip = parts.next().unwrap_or("");
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| err(format!("`{ip}` is not an IP address")))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let mut prefix = max;
            let mut ports = Vec::new();
            let p2 = parts.next();
            let p3 = parts.next();
            let port_text = match (p2, p3) {
                (Some(p), Some(ports)) => {
                    prefix = p
                        .parse()
                        .ok()
                        .filter(|&x| x <= max)
                        .ok_or_else(|| err(format!("bad prefix `{p}`")))?;
                    Some(ports)
                }
                (Some(p), None)
                    if !p.contains(',')
                        && !p.contains('-')
                        && p.parse::<u8>().is_ok_and(|x| x <= max) =>
                {
                    // `IP/N`: N is a prefix; ports need `IP/prefix/ports`.
                    prefix = p.parse().unwrap_or(max);
                    None
                }
                (Some(p), None) => Some(p),
                (None, _) => None,
            };
            if let Some(pt) = port_text {
                for item in pt.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (a, b) = item.split_once('-').unwrap_or((item, item));
                    let pa = a.trim().parse::<u16>();
                    let pb = b.trim().parse::<u16>();
                    match (pa, pb) {
                        (Ok(a), Ok(b)) if a <= b => ports.push((a, b)),
                        _ => return Err(err(format!("bad port `{item}`"))),
                    }
                }
            }
            rules.push(WhitelistRule {
                side,
                addr,
                prefix,
                ports,
            });
        }
        Ok(Whitelist { rules })
    }

    /// True when (attacker ip, port) matches a src rule or (victim ip, port)
    /// a dst rule.
    pub fn matches(&self, src: (IpAddr, u16), dst: (IpAddr, u16)) -> bool {
        self.rules.iter().any(|r| match r.side {
            Side::Src => r.matches(src.0, src.1),
            Side::Dst => r.matches(dst.0, dst.1),
            Side::Both => r.matches(src.0, src.1) || r.matches(dst.0, dst.1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file() {
        let c = Config::parse(
            "# comment\nSSH_LIST_THRESHOLD = 5\nGENERAL_IGNORE_FIRST_SEND=1\n\
             RDP_BRUTEFORCE_OUT_MAX_BYTES = 7 # trailing\nGENERAL_ATTACK_MIN_RATIO_TO_KEEP_TRACKING_HOST = 2.5\n",
            "c",
        )
        .unwrap();
        assert_eq!(c.services[0].list_threshold, 5);
        assert!(c.ignore_first_send);
        assert_eq!(c.services[1].outgoing.unwrap().max_bytes, 7);
        assert_eq!(c.attack_min_ratio_to_keep_tracking_host, 2.5);
        for (bad, want) in [
            (
                "SSH_LIST_SIZE = x",
                "c:1: SSH_LIST_SIZE: `x` is not a whole number",
            ),
            ("\nNOPE = 1", "c:2: unknown key NOPE"),
            ("TELNET_BRUTEFORCE_OUT_MIN_BYTES = 1", "unknown key"),
            ("SSH_LIST_SIZE", "not KEY = VALUE"),
        ] {
            let e = Config::parse(bad, "c").unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn whitelist() {
        let w = Whitelist::parse(
            "src 192.0.2.0/24\ndst 198.51.100.1/32/22,3000-3010 # x\n10.0.0.1\n",
            "w",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(w.matches((ip("192.0.2.9"), 1), (ip("1.1.1.1"), 22)));
        assert!(w.matches((ip("8.8.8.8"), 1), (ip("198.51.100.1"), 3005)));
        assert!(!w.matches((ip("8.8.8.8"), 1), (ip("198.51.100.1"), 23)));
        assert!(w.matches((ip("8.8.8.8"), 1), (ip("10.0.0.1"), 23)));
        assert!(!w.matches((ip("8.8.8.8"), 1), (ip("9.9.9.9"), 22)));
        let e = Whitelist::parse("\nsrc 300.1.1.1", "w")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w:2: "), "{e}");
        assert!(Whitelist::parse("1.2.3.4/24/70000", "w").is_err());
    }
}
