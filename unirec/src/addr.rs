//! UniRec `ipaddr` (16 bytes, IPv4 stored as `0*8 a.b.c.d ff*4`) and `macaddr`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A UniRec IP address as it is stored in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UrIp(pub [u8; 16]);

impl UrIp {
    pub const fn from_v4(a: Ipv4Addr) -> UrIp {
        let o = a.octets();
        UrIp([
            0, 0, 0, 0, 0, 0, 0, 0, o[0], o[1], o[2], o[3], 0xff, 0xff, 0xff, 0xff,
        ])
    }

    pub const fn from_v6(a: Ipv6Addr) -> UrIp {
        UrIp(a.octets())
    }

    /// IPv4 iff the first 8 bytes are zero and the last 4 are `ff`.
    pub fn is_ipv4(&self) -> bool {
        self.0[..8] == [0; 8] && self.0[12..] == [0xff; 4]
    }

    pub fn to_std(self) -> IpAddr {
        if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::new(self.0[8], self.0[9], self.0[10], self.0[11]))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }

    /// Text to address: with a `:` it must be IPv6, else dotted-quad IPv4
    /// (`inet_pton` rules: no leading zeros, no shorthand).
    pub fn parse(text: &str) -> Option<UrIp> {
        if text.contains(':') {
            text.parse::<Ipv6Addr>().ok().map(UrIp::from_v6)
        } else {
            text.parse::<Ipv4Addr>().ok().map(UrIp::from_v4)
        }
    }

    /// Appends the address as glibc's `inet_ntop` prints it.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        if self.is_ipv4() {
            write_v4(&self.0[8..12], out);
        } else {
            write_v6(&self.0, out);
        }
    }
}

impl From<IpAddr> for UrIp {
    fn from(a: IpAddr) -> UrIp {
        match a {
            IpAddr::V4(a) => UrIp::from_v4(a),
            IpAddr::V6(a) => UrIp::from_v6(a),
        }
    }
}

impl fmt::Display for UrIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(40);
        self.write_text(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

fn write_v4(o: &[u8], out: &mut Vec<u8>) {
    let mut num = itoa::Buffer::new();
    for (i, b) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(num.format(*b).as_bytes());
    }
}

/// glibc's `inet_ntop6`: the first longest run (≥ 2) of zero groups becomes
/// `::`; `::a.b.c.d` and `::ffff:a.b.c.d` end in dotted-quad form.
fn write_v6(b: &[u8; 16], out: &mut Vec<u8>) {
    let mut words = [0u16; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
    }
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.push(b':');
            i += best_len;
            if i == 8 {
                out.push(b':');
            }
            continue;
        }
        if i > 0 {
            out.push(b':');
        }
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            write_v4(&b[12..16], out);
            return;
        }
        let w = words[i];
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let nib = (w >> shift) & 0xf;
            if nib != 0 || started || shift == 0 {
                out.push(HEX[nib as usize]);
                started = true;
            }
        }
        i += 1;
    }
}

/// A MAC address in transmission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UrMac(pub [u8; 6]);

impl UrMac {
    /// Parses `a:b:c:d:e:f` with 1–2 hex digits per group.
    pub fn parse(text: &str) -> Option<UrMac> {
        let mut mac = [0u8; 6];
        let mut parts = text.trim().split(':');
        for byte in mac.iter_mut() {
            let part = parts.next()?;
            if part.is_empty() || part.len() > 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(UrMac(mac))
    }

    /// Appends `aa:bb:cc:dd:ee:ff` (lower case).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
    }
}

impl fmt::Display for UrMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(17);
        self.write_text(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        UrIp::parse(s).unwrap().to_string()
    }

    #[test]
    fn ipv4_layout() {
        let ip = UrIp::parse("10.0.0.1").unwrap();
        assert_eq!(
            ip.0,
            [0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]
        );
        assert!(ip.is_ipv4());
        assert_eq!(ip.to_string(), "10.0.0.1");
    }

    #[test]
    fn ipv6_prints_like_glibc() {
        assert_eq!(text("2001:db8::1"), "2001:db8::1");
        assert_eq!(text("::"), "::");
        assert_eq!(text("::1"), "::1");
        assert_eq!(text("fe80::1"), "fe80::1");
        assert_eq!(text("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(text("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(text("::2"), "::2");
        assert_eq!(text("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(text("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(text("1:2:3:4:5:6:7:0"), "1:2:3:4:5:6:7:0");
        assert_eq!(text("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(text("2001:DB8:0:0:0:0:0:0"), "2001:db8::");
        // An all-zero address is IPv6 in UniRec.
        assert!(!UrIp::default().is_ipv4());
        assert_eq!(UrIp::default().to_string(), "::");
    }

    #[test]
    fn rejects_what_inet_pton_rejects() {
        assert_eq!(UrIp::parse("10.0.0"), None);
        assert_eq!(UrIp::parse("10.0.0.01"), None);
        assert_eq!(UrIp::parse("1::2::3"), None);
        assert_eq!(UrIp::parse(""), None);
    }

    #[test]
    fn mac_round_trip() {
        let m = UrMac::parse("1:2:3:a:bb:FF").unwrap();
        assert_eq!(m.0, [1, 2, 3, 0xa, 0xbb, 0xff]);
        assert_eq!(m.to_string(), "01:02:03:0a:bb:ff");
        assert_eq!(UrMac::parse("1:2:3:4:5"), None);
        assert_eq!(UrMac::parse("1:2:3:4:5:6:7"), None);
        assert_eq!(UrMac::parse("1:2:3:4:5:100"), None);
    }
}
