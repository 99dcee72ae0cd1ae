//! ipblacklistfilter — forwards the flows whose source or destination lies in
//! a blacklisted IPv4/IPv6 prefix, with bitmaps of the blacklists.
//!
//! Detector files (written by `bl_downloader`), one entity per line:
//!
//! ```text
//! entity ',' bitmap [ ';' list_id ':' port [ ',' port ]* ]*
//! 1.10.16.0/20,8
//! 1.30.40.5,9;1:80,8080,443;4:80
//! 2001:db8::/32,1
//! 192.0.2.9,999,adaptive-id-1,adaptive-id-2
//! ```
//!
//! Bit `id-1` of the bitmap stands for blacklist `id`. A blacklist with a
//! port list matches only flows on those ports (the blacklisted side's
//! port). Bitmap `999` is an adaptive entry: the rest of the line goes to
//! ADAPTIVE_IDS. Malformed lines are reported with their line number and
//! skipped. Flows with port 53 on either side are ignored (DNS resolvers).
//!
//! Matching uses every prefix that contains the address (nested prefixes
//! from different lists combine). Differences from C: both directions are
//! checked and both bitmaps reported (C stops after a listed source, even
//! when its ports filter it out, and leaves a stale bitmap of an earlier
//! flow in the other field); nested prefixes always match (C's binary search
//! can miss them).
#![forbid(unsafe_code)]

use detector_common::{field, FastMap, Flow, FlowDetector};
use std::net::IpAddr;
use unirec::{RecordBuilder, RecordError};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

/// The output template of the C filter.
pub const ALERT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint64 SRC_BLACKLIST,\
uint64 DST_BLACKLIST,string ADAPTIVE_IDS";

/// Bitmap value of adaptive entries.
pub const ADAPTIVE: u64 = 999;

/// One entity of a detector file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    pub bitmap: u64,
    /// (blacklist id, allowed ports).
    pub ports: Vec<(u8, Vec<u16>)>,
    pub adaptive: Option<String>,
}

impl Entry {
    /// The bitmap for a flow on `port`: blacklists with a port list not
    /// containing it are cleared.
    pub fn bitmap_for(&self, port: u16) -> u64 {
        let mut b = self.bitmap;
        for (id, ports) in &self.ports {
            if !ports.contains(&port) {
                b &= !(1u64 << (id - 1));
            }
        }
        b
    }
}

/// Prefix tables of one address family: per prefix length (longest first)
/// a map from the masked address to an index into `entries` (small maps
/// keep lookups in cache).
#[derive(Clone, Debug, Default)]
struct Table {
    by_len: Vec<(u8, FastMap<u128, u32>)>,
    entries: Vec<Entry>,
}

impl Table {
    fn insert(&mut self, addr: u128, len: u8, bits: u8, e: Entry) {
        let key = mask(addr, len, bits);
        if !self.by_len.iter().any(|(l, _)| *l == len) {
            self.by_len.push((len, FastMap::default()));
            self.by_len.sort_by_key(|(l, _)| std::cmp::Reverse(*l));
        }
        let Some((_, map)) = self.by_len.iter_mut().find(|(l, _)| *l == len) else {
            return;
        };
        let next = self.entries.len() as u32;
        let idx = *map.entry(key).or_insert(next) as usize;
        if idx == self.entries.len() {
            self.entries.push(Entry::default());
        }
        let slot = &mut self.entries[idx];
        slot.bitmap |= e.bitmap;
        slot.ports.extend(e.ports);
        if e.adaptive.is_some() {
            slot.adaptive = e.adaptive;
        }
    }

    fn lookup(&self, addr: u128, bits: u8, mut f: impl FnMut(&Entry)) {
        for (len, m) in &self.by_len {
            if let Some(&i) = m.get(&mask(addr, *len, bits)) {
                f(&self.entries[i as usize]);
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn mask(a: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = u128::MAX << (u32::from(bits) - u32::from(len));
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    a & keep & all
}

fn split(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The blacklists of one or more detector files.
#[derive(Clone, Debug, Default)]
pub struct Blacklist {
    v4: Table,
    v6: Table,
}

/// One match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hit {
    pub bitmap: u64,
    pub adaptive: Option<String>,
}

impl Blacklist {
    /// Parses a detector file; malformed lines are skipped and returned as
    /// `FILE:LINE: why` messages.
    pub fn parse(&mut self, text: &str, file: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((ip, len, e)) => {
                    let (a, bits) = split(ip);
                    if bits == 32 {
                        self.v4.insert(a, len, bits, e)
                    } else {
                        self.v6.insert(a, len, bits, e)
                    }
                }
                Err(why) => warnings.push(format!("{file}:{}: {why}: `{line}`", n + 1)),
            }
        }
        warnings
    }

    /// Entities loaded (IPv4, IPv6).
    pub fn len(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// The blacklists `ip` is on for a flow on `port`.
    pub fn check(&self, ip: IpAddr, port: u16) -> Hit {
        let (a, bits) = split(ip);
        let t = if bits == 32 { &self.v4 } else { &self.v6 };
        let mut hit = Hit::default();
        t.lookup(a, bits, |e| {
            hit.bitmap |= e.bitmap_for(port);
            if e.adaptive.is_some() && hit.adaptive.is_none() {
                hit.adaptive = e.adaptive.clone();
            }
        });
        hit
    }
}

fn parse_line(line: &str) -> Result<(IpAddr, u8, Entry), String> {
    let (entity, rest) = line.split_once(',').ok_or("expected `entity,bitmap`")?;
    let (addr, len) = match entity.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (entity, None),
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("bad prefix length `{l}`"))?,
        None => max,
    };
    let (bitmap_text, port_part) = match rest.split_once(';') {
        Some((b, p)) => (b, Some(p)),
        None => (rest, None),
    };
    let first = bitmap_text.split(',').next().unwrap_or("").trim();
    let bitmap: u64 = first
        .parse()
        .map_err(|_| format!("`{first}` is not a bitmap"))?;
    if bitmap == ADAPTIVE {
        let ids = rest.split_once(',').map(|(_, r)| r).unwrap_or("");
        return Ok((
            ip,
            len,
            Entry {
                bitmap: 0,
                ports: Vec::new(),
                adaptive: Some(ids.to_string()),
            },
        ));
    }
    if bitmap == 0 {
        return Err("empty bitmap".into());
    }
    let mut ports = Vec::new();
    if let Some(pp) = port_part {
        for item in pp.split(';') {
            let (id, list) = item
                .split_once(':')
                .ok_or_else(|| format!("`{item}` is not `id:port,...`"))?;
            let id: u8 = id
                .trim()
                .parse()
                .ok()
                .filter(|i| (1..=64).contains(i))
                .ok_or_else(|| format!("bad blacklist id `{id}`"))?;
            let list = list
                .split(',')
                .map(|p| p.trim().parse::<u16>())
                .collect::<Result<Vec<u16>, _>>()
                .map_err(|_| format!("bad port list `{list}`"))?;
            ports.push((id, list));
        }
    }
    Ok((
        ip,
        len,
        Entry {
            bitmap,
            ports,
            adaptive: None,
        },
    ))
}

/// A matching flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub flow: Flow,
    pub src_blacklist: u64,
    pub dst_blacklist: u64,
    pub adaptive_ids: String,
}

/// The filter state.
#[derive(Debug, Default)]
pub struct Filter {
    pub list: Blacklist,
}

impl Filter {
    pub fn new(list: Blacklist) -> Filter {
        Filter { list }
    }
}

impl FlowDetector for Filter {
    type Alert = Alert;

    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }

    fn output_spec(&self) -> &'static str {
        ALERT_SPEC
    }

    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if f.src_port == 53 || f.dst_port == 53 {
            return;
        }
        let s = self.list.check(f.src_ip.to_std(), f.src_port);
        let d = self.list.check(f.dst_ip.to_std(), f.dst_port);
        if s.bitmap == 0 && d.bitmap == 0 && s.adaptive.is_none() && d.adaptive.is_none() {
            return;
        }
        out.push(Alert {
            flow: *f,
            src_blacklist: s.bitmap,
            dst_blacklist: d.bitmap,
            adaptive_ids: s.adaptive.or(d.adaptive).unwrap_or_default(),
        });
    }

    fn finish(&mut self, _out: &mut Vec<Alert>) {}

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        let f = &a.flow;
        b.set_ip(i("SRC_IP"), f.src_ip)?;
        b.set_ip(i("DST_IP"), f.dst_ip)?;
        b.set_u16(i("SRC_PORT"), f.src_port)?;
        b.set_u16(i("DST_PORT"), f.dst_port)?;
        b.set_u8(i("PROTOCOL"), f.protocol)?;
        b.set_u32(i("PACKETS"), f.packets)?;
        b.set_u64(i("BYTES"), f.bytes)?;
        b.set_time(i("TIME_FIRST"), f.time_first)?;
        b.set_time(i("TIME_LAST"), f.time_last)?;
        b.set_u64(i("SRC_BLACKLIST"), a.src_blacklist)?;
        b.set_u64(i("DST_BLACKLIST"), a.dst_blacklist)?;
        b.set_var(i("ADAPTIVE_IDS"), a.adaptive_ids.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::UrIp;

    fn list(text: &str) -> (Blacklist, Vec<String>) {
        let mut b = Blacklist::default();
        let w = b.parse(text, "bl");
        (b, w)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_lookup() {
        let (b, w) = list(
            "# comment\n1.10.16.0/20,8\n1.30.40.5,9;1:80,8080,443;4:80\n2001:db8::/32,1\n\
             garbage\n10.0.0.0/33,1\n10.1.1.1,x\n192.0.2.9,999,ad-1,ad-2\n1.10.16.7,2\n",
        );
        assert_eq!(b.len(), (4, 1));
        assert_eq!(
            w,
            vec![
                "bl:5: expected `entity,bitmap`: `garbage`",
                "bl:6: bad prefix length `33`: `10.0.0.0/33,1`",
                "bl:7: `x` is not a bitmap: `10.1.1.1,x`",
            ]
        );
        assert_eq!(b.check(ip("1.10.31.255"), 1).bitmap, 8);
        assert_eq!(b.check(ip("1.10.32.0"), 1).bitmap, 0);
        // nested prefixes combine
        assert_eq!(b.check(ip("1.10.16.7"), 1).bitmap, 8 | 2);
        // ports: list 1 only on 80/8080/443, list 4 (bit 8) only on 80
        assert_eq!(b.check(ip("1.30.40.5"), 80).bitmap, 9);
        assert_eq!(b.check(ip("1.30.40.5"), 443).bitmap, 1);
        assert_eq!(b.check(ip("1.30.40.5"), 22).bitmap, 0);
        assert_eq!(b.check(ip("2001:db8:1::5"), 1).bitmap, 1);
        assert_eq!(b.check(ip("2001:db9::5"), 1).bitmap, 0);
        assert_eq!(
            b.check(ip("192.0.2.9"), 1).adaptive.as_deref(),
            Some("ad-1,ad-2")
        );
    }

    fn flow(src: &str, sp: u16, dst: &str, dp: u16) -> Flow {
        Flow {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(dst).unwrap(),
            src_port: sp,
            dst_port: dp,
            protocol: 6,
            ..Flow::default()
        }
    }

    #[test]
    fn filter_marks_both_directions() {
        let (b, _) = list("198.51.100.0/24,1\n203.0.113.5,2;2:443\n");
        let mut f = Filter::new(b);
        let mut out = Vec::new();
        f.flow(&flow("10.0.0.1", 5000, "198.51.100.7", 80), &mut out);
        f.flow(&flow("203.0.113.5", 443, "10.0.0.1", 5000), &mut out);
        f.flow(&flow("203.0.113.5", 80, "10.0.0.1", 5000), &mut out); // port filtered
        f.flow(&flow("10.0.0.1", 53, "198.51.100.7", 5000), &mut out); // DNS
        f.flow(&flow("10.0.0.1", 1, "10.0.0.2", 2), &mut out);
        f.flow(&flow("203.0.113.5", 443, "198.51.100.1", 1), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].src_blacklist, out[0].dst_blacklist), (0, 1));
        assert_eq!((out[1].src_blacklist, out[1].dst_blacklist), (2, 0));
        assert_eq!((out[2].src_blacklist, out[2].dst_blacklist), (2, 1));
    }
}
