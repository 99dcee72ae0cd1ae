//! IP prefixes over UniRec's 16-byte address layout (IPv4 in bytes 8..12).

use std::cmp::Ordering;
use unirec::UrIp;

/// Keeps the first `bits` bits of `b`, zeroes the rest.
fn mask_bits(b: &mut [u8], bits: u32) {
    for (i, x) in b.iter_mut().enumerate() {
        let keep = bits.saturating_sub(8 * i as u32).min(8);
        *x &= (0xff00u16 >> keep) as u8;
    }
}

/// The network of `ip/len` (an IPv4 address stays in UniRec's IPv4 form).
pub fn mask(ip: UrIp, len: u8) -> UrIp {
    let mut b = ip.0;
    if ip.is_ipv4() {
        mask_bits(&mut b[8..12], u32::from(len));
    } else {
        mask_bits(&mut b, u32::from(len));
    }
    UrIp(b)
}

fn is_v4(b: &[u8; 16]) -> bool {
    b[..8] == [0; 8] && b[12..] == [0xff; 4]
}

/// An address against a prefix: `None` when the IP versions differ,
/// otherwise how the address's network compares with the prefix's
/// (`Equal` = inside the prefix).
#[inline]
pub fn cmp_prefix(addr: &[u8; 16], net: &UrIp, len: u8) -> Option<Ordering> {
    let v4 = net.is_ipv4();
    if is_v4(addr) != v4 {
        return None;
    }
    Some(mask(UrIp(*addr), len).0.cmp(&net.0))
}

/// A set of addresses and prefixes for `in [..]`: exact addresses by
/// binary search, prefixes grouped by version and length (one masked
/// binary search per group).
#[derive(Clone, Debug, Default)]
pub struct IpSet {
    exact: Vec<[u8; 16]>,
    groups: Vec<(bool, u8, Vec<[u8; 16]>)>,
}

impl IpSet {
    pub fn insert_addr(&mut self, ip: UrIp) {
        self.exact.push(ip.0);
    }

    pub fn insert_prefix(&mut self, ip: UrIp, len: u8) {
        let v4 = ip.is_ipv4();
        let net = mask(ip, len).0;
        match self
            .groups
            .iter_mut()
            .find(|(g4, glen, _)| *g4 == v4 && *glen == len)
        {
            Some((_, _, nets)) => nets.push(net),
            None => self.groups.push((v4, len, vec![net])),
        }
    }

    /// Sorts for lookups; call once after the inserts.
    pub fn finish(&mut self) {
        self.exact.sort_unstable();
        self.exact.dedup();
        for (_, _, nets) in &mut self.groups {
            nets.sort_unstable();
            nets.dedup();
        }
        // Longer prefixes are rarer; the order does not change the result.
        self.groups
            .sort_by_key(|&(v4, len, _)| (v4, std::cmp::Reverse(len)));
    }

    #[inline]
    pub fn contains(&self, addr: &[u8; 16]) -> bool {
        if self.exact.binary_search(addr).is_ok() {
            return true;
        }
        if self.groups.is_empty() {
            return false;
        }
        let v4 = is_v4(addr);
        self.groups
            .iter()
            .filter(|(g4, _, _)| *g4 == v4)
            .any(|(_, len, nets)| nets.binary_search(&mask(UrIp(*addr), *len).0).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> UrIp {
        UrIp::parse(s).unwrap()
    }

    #[test]
    fn masks_keep_the_version() {
        assert_eq!(mask(ip("10.1.2.3"), 8), ip("10.0.0.0"));
        assert_eq!(mask(ip("10.1.2.3"), 0), ip("0.0.0.0"));
        assert_eq!(mask(ip("10.1.2.3"), 32), ip("10.1.2.3"));
        assert_eq!(mask(ip("192.168.255.1"), 17), ip("192.168.128.0"));
        assert_eq!(mask(ip("2001:db8:ffff::1"), 36), ip("2001:db8:f000::"));
        assert_eq!(mask(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(mask(ip("2001:db8::1"), 0), ip("::"));
    }

    #[test]
    fn prefix_comparison() {
        let net = mask(ip("192.168.0.0"), 16);
        assert_eq!(
            cmp_prefix(&ip("192.168.3.4").0, &net, 16),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_prefix(&ip("192.167.3.4").0, &net, 16),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_prefix(&ip("192.169.0.0").0, &net, 16),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_prefix(&ip("::1").0, &net, 16), None);
        assert_eq!(cmp_prefix(&ip("0.0.0.0").0, &mask(ip("::"), 0), 0), None);
    }

    #[test]
    fn sets_mix_addresses_and_prefixes() {
        let mut s = IpSet::default();
        s.insert_prefix(ip("192.168.0.0"), 16);
        s.insert_prefix(ip("10.0.0.0"), 24);
        s.insert_prefix(ip("fe80::"), 8);
        s.insert_addr(ip("172.16.0.1"));
        s.insert_addr(ip("2001:db8::1"));
        s.finish();
        for yes in [
            "192.168.7.7",
            "10.0.0.255",
            "fe80:12:0:34::56",
            "172.16.0.1",
            "2001:db8::1",
        ] {
            assert!(s.contains(&ip(yes).0), "{yes}");
        }
        for no in ["10.0.1.0", "172.16.0.2", "fd00::1", "2001:db8::2", "::"] {
            assert!(!s.contains(&ip(no).0), "{no}");
        }
    }
}
