//! link_traffic: flows, packets and bytes per link (LINK_BIT_FIELD) and
//! direction (DIR_BIT_FIELD), for Munin.
//!
//! As NEMEA's link_traffic: the links come from a config file of
//! `VALUE,NAME,UR_FIELD,COLOR` lines (`#` starts a comment line; UR_FIELD
//! and COLOR are read by nothing but the C module's parser); a record counts
//! for the link whose VALUE equals its LINK_BIT_FIELD (equality, not a bit
//! test), DIR_BIT_FIELD 0 as "in" and 1 as "out" (other values are not
//! counted); records of no configured link are counted apart and never
//! shown. Counters are cumulative since the start; packets are 32-bit
//! counters that wrap, as C's. Every client of the socket gets two lines:
//!
//! ```text
//! NAME-in-bytes,NAME-in-flows,NAME-in-packets,NAME-out-bytes,NAME-out-flows,NAME-out-packets,...
//! 123,4,56,7890,12,34,...
//! ```
//!
//! links in descending VALUE order; with `-d` only the `in` triples.
//!
//! Differences: blank config lines are skipped (C stops at them), and a
//! line without a name is an error naming it; without a config file (none
//! given and none at the default path) every LINK_BIT_FIELD value seen
//! becomes a link named `link<VALUE>`.

use std::fmt::Write as _;

/// One configured link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub value: u64,
    pub name: String,
}

/// A config line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: `{text}`: expected VALUE,NAME,UR_FIELD,COLOR with VALUE a number")]
    BadValue { line: usize, text: String },
    #[error("line {line}: `{text}`: no link name (expected VALUE,NAME,UR_FIELD,COLOR)")]
    NoName { line: usize, text: String },
    #[error("line {line}: `{text}`: a name may not contain `-` or white space (it becomes a Munin field name)")]
    BadName { line: usize, text: String },
    #[error("line {line}: link value {value} is configured twice")]
    Duplicate { line: usize, value: u64 },
}

/// Reads a link_traff_conf.cfg.
pub fn parse_config(text: &str) -> Result<Vec<Link>, ConfigError> {
    let mut links: Vec<Link> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let mut parts = line.split(',');
        let value = parts.next().unwrap_or("").trim();
        let value: u64 = value.parse().map_err(|_| ConfigError::BadValue {
            line: n,
            text: raw.to_string(),
        })?;
        let name = parts.next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(ConfigError::NoName {
                line: n,
                text: raw.to_string(),
            });
        }
        if name.contains('-') || name.contains(char::is_whitespace) {
            return Err(ConfigError::BadName {
                line: n,
                text: raw.to_string(),
            });
        }
        if links.iter().any(|l| l.value == value) {
            return Err(ConfigError::Duplicate { line: n, value });
        }
        links.push(Link {
            value,
            name: name.to_string(),
        });
    }
    Ok(links)
}

/// The counters of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub flows_in: u64,
    pub packets_in: u32,
    pub bytes_in: u64,
    pub flows_out: u64,
    pub packets_out: u32,
    pub bytes_out: u64,
}

impl Counts {
    fn add(&mut self, dir: u8, bytes: u64, packets: u32) {
        match dir {
            0 => {
                self.flows_in += 1;
                self.packets_in = self.packets_in.wrapping_add(packets);
                self.bytes_in = self.bytes_in.wrapping_add(bytes);
            }
            1 => {
                self.flows_out += 1;
                self.packets_out = self.packets_out.wrapping_add(packets);
                self.bytes_out = self.bytes_out.wrapping_add(bytes);
            }
            _ => {}
        }
    }
}

/// The counters of every link.
#[derive(Clone, Debug)]
pub struct LinkTraffic {
    /// Descending by value.
    links: Vec<Link>,
    counts: Vec<Counts>,
    /// Records of no configured link.
    pub other: Counts,
    /// Only the `in` counters are reported (`-d`).
    in_only: bool,
    /// Unknown values become links (no config file).
    discover: bool,
}

impl LinkTraffic {
    pub fn new(mut links: Vec<Link>, in_only: bool, discover: bool) -> LinkTraffic {
        links.sort_by_key(|l| std::cmp::Reverse(l.value));
        let counts = vec![Counts::default(); links.len()];
        LinkTraffic {
            links,
            counts,
            other: Counts::default(),
            in_only,
            discover,
        }
    }

    /// Counts one flow.
    pub fn add(&mut self, link: u64, dir: u8, bytes: u64, packets: u32) {
        let at = self.links.binary_search_by(|l| link.cmp(&l.value));
        match at {
            Ok(i) => self.counts[i].add(dir, bytes, packets),
            Err(i) if self.discover => {
                self.links.insert(
                    i,
                    Link {
                        value: link,
                        name: format!("link{link}"),
                    },
                );
                self.counts.insert(i, Counts::default());
                self.counts[i].add(dir, bytes, packets);
            }
            Err(_) => self.other.add(dir, bytes, packets),
        }
    }

    /// The links, in report order, with their counters.
    pub fn links(&self) -> impl Iterator<Item = (&Link, &Counts)> {
        self.links.iter().zip(&self.counts)
    }

    /// The two lines a socket client gets.
    pub fn report(&self) -> String {
        let mut head = String::new();
        let mut vals = String::new();
        for (l, c) in self.links() {
            let n = &l.name;
            let _ = write!(head, "{n}-in-bytes,{n}-in-flows,{n}-in-packets,");
            let _ = write!(vals, "{},{},{},", c.bytes_in, c.flows_in, c.packets_in);
            if !self.in_only {
                let _ = write!(head, "{n}-out-bytes,{n}-out-flows,{n}-out-packets,");
                let _ = write!(vals, "{},{},{},", c.bytes_out, c.flows_out, c.packets_out);
            }
        }
        head.pop();
        vals.pop();
        format!("{head}\n{vals}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "#LINK_BIT_FIELD(uint64),NAME(string),UR_FIELD(string),COLOR\n\
        1,alpha,LINK_BIT_FIELD,99a0A9\n\
        \n  # indented comment\n\
        4,beta,LINK_BIT_FIELD,008000\n\
        2,gamma\n";

    #[test]
    fn reads_the_config() {
        let links = parse_config(CFG).unwrap();
        assert_eq!(
            links
                .iter()
                .map(|l| (l.value, l.name.as_str()))
                .collect::<Vec<_>>(),
            [(1, "alpha"), (4, "beta"), (2, "gamma")]
        );
        for (bad, want) in [
            ("x,alpha", "line 1: `x,alpha`: expected VALUE"),
            ("1", "no link name"),
            ("1,a-b", "may not contain `-`"),
            ("1,a\n1,b", "line 2: link value 1 is configured twice"),
        ] {
            let e = parse_config(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn counts_per_link_and_direction_in_descending_order() {
        let mut t = LinkTraffic::new(parse_config(CFG).unwrap(), false, false);
        t.add(1, 0, 100, 2);
        t.add(1, 1, 50, 1);
        t.add(4, 0, 10, 1);
        t.add(4, 0, 10, 1);
        t.add(4, 7, 999, 9); // neither in nor out
        t.add(9, 0, 5, 5); // no such link
        assert_eq!(
            t.report(),
            "beta-in-bytes,beta-in-flows,beta-in-packets,beta-out-bytes,beta-out-flows,beta-out-packets,\
gamma-in-bytes,gamma-in-flows,gamma-in-packets,gamma-out-bytes,gamma-out-flows,gamma-out-packets,\
alpha-in-bytes,alpha-in-flows,alpha-in-packets,alpha-out-bytes,alpha-out-flows,alpha-out-packets\n\
20,2,2,0,0,0,0,0,0,0,0,0,100,1,2,50,1,1\n"
        );
        assert_eq!(t.other.flows_in, 1);
        let mut d = LinkTraffic::new(parse_config("3,x").unwrap(), true, false);
        d.add(3, 0, 1, 1);
        d.add(3, 1, 1, 1);
        assert_eq!(d.report(), "x-in-bytes,x-in-flows,x-in-packets\n1,1,1\n");
    }

    #[test]
    fn packets_wrap_at_32_bits_and_links_can_be_discovered() {
        let mut t = LinkTraffic::new(vec![], false, true);
        t.add(5, 0, 1, u32::MAX);
        t.add(5, 0, 1, 2);
        t.add(7, 1, 3, 1);
        assert_eq!(
            t.report(),
            "link7-in-bytes,link7-in-flows,link7-in-packets,link7-out-bytes,link7-out-flows,link7-out-packets,\
link5-in-bytes,link5-in-flows,link5-in-packets,link5-out-bytes,link5-out-flows,link5-out-packets\n\
0,0,0,3,1,1,2,2,1,0,0,0\n"
        );
        assert_eq!(LinkTraffic::new(vec![], false, false).report(), "\n\n");
    }
}
