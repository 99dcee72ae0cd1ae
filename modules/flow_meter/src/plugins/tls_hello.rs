//! The TLS ClientHello / ServerHello parser shared by the `tls` and `quic`
//! plugins (QUIC carries the same handshake in its CRYPTO frames, without
//! the TLS record header).
//!
//! It follows ipfixprobe 5.7's TLS parser, including its quirks, because the
//! exported values depend on them:
//!
//! * the record and handshake versions are checked on their **first byte
//!   only** (ipfixprobe's version union aliases major and minor to one
//!   byte): record `22, 3, *`, handshake version byte `3`;
//! * the handshake version is read as a host-order (little-endian) `u16`,
//!   so `03 03` is 771 but `03 01` is 259 (this is what JA3 and
//!   `TLS_VERSION` show);
//! * the compression-methods length is not checked against the packet, the
//!   extension block's length is checked without its own 2 bytes, and the
//!   ALPN list bound is the extension start + the extension length + 2;
//! * the signature-algorithms list is read as u16s over the whole extension,
//!   the list length included (JA4 drops that first value again).
//!
//! Where ipfixprobe would read up to two bytes past the payload, we read
//! zeros instead: every read is bounds-checked and nothing here panics.
//! Parsed lists are kept in reusable vectors (no allocation per packet once
//! warmed up); strings are ranges into the parsed bytes.

use std::ops::Range;

pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// QUIC transport parameters: RFC 9001 / drafts 33–34.
pub const EXT_QUIC_TP_V1: u16 = 0x39;
/// QUIC transport parameters: drafts 13–32.
pub const EXT_QUIC_TP: u16 = 0xffa5;
/// QUIC transport parameters: drafts 2–12.
pub const EXT_QUIC_TP_V2: u16 = 0x26;
/// Google's user-agent transport parameter.
pub const TP_GOOGLE_USER_AGENT: u64 = 0x3129;

/// Reads byte `i`, zero past the end.
#[inline]
pub fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

/// Reads a big-endian u16 at `i`, zero bytes past the end.
#[inline]
pub fn be16(d: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([byte(d, i), byte(d, i.saturating_add(1))])
}

/// A QUIC variable-length integer at `*off` (RFC 9000 §16); advances `*off`.
/// Bytes past the end read as zero.
pub fn varint(d: &[u8], off: &mut usize) -> u64 {
    let first = byte(d, *off);
    let n = 1usize << (first >> 6);
    let mut v = u64::from(first & 0x3f);
    for k in 1..n {
        v = (v << 8) | u64::from(byte(d, off.saturating_add(k)));
    }
    *off = off.saturating_add(n);
    v
}

/// GREASE values (RFC 8701): `0x?A?A` with equal bytes.
#[inline]
pub fn is_grease(v: u16) -> bool {
    v != 0 && v & !0xFAFA == 0 && (v & 0xff) == (v >> 8)
}

/// One parsed hello. Reuse it: [`Hello::parse`] clears the previous one.
#[derive(Default, Debug)]
pub struct Hello {
    /// 1 = ClientHello, 2 = ServerHello.
    pub handshake_type: u8,
    /// The handshake version, read little-endian (ipfixprobe's value).
    pub version: u16,
    /// Offset of the extension block's length.
    ext_off: usize,
    /// Cipher suites without GREASE (ClientHello).
    pub ciphers: Vec<u16>,
    /// Every extension (GREASE included) as (type, length), in wire order.
    pub extensions: Vec<(u16, u16)>,
    /// Supported groups without GREASE.
    pub curves: Vec<u16>,
    pub point_formats: Vec<u16>,
    /// The signature-algorithms extension as u16s, its list length first.
    pub sig_algs: Vec<u16>,
    /// Supported versions without GREASE (ServerHello: the selected one).
    pub supported_versions: Vec<u16>,
    pub alpns: Vec<Range<usize>>,
    pub server_names: Vec<Range<usize>>,
    /// Google user-agent transport parameters (QUIC only). Not cleared by
    /// [`Hello::parse`], as in ipfixprobe: the caller clears it.
    pub user_agents: Vec<Range<usize>>,
}

/// `r` clamped to `d`'s length.
fn clamp(r: Range<usize>, len: usize) -> Range<usize> {
    r.start.min(len)..r.end.min(len)
}

impl Hello {
    pub fn is_client_hello(&self) -> bool {
        self.handshake_type == HANDSHAKE_CLIENT_HELLO
    }

    pub fn is_server_hello(&self) -> bool {
        self.handshake_type == HANDSHAKE_SERVER_HELLO
    }

    /// Parses the fixed part of a hello (through the compression methods):
    /// with the TLS record header (`quic` false) or without (`quic` true).
    /// False if `d` is not a ClientHello or ServerHello ipfixprobe accepts.
    pub fn parse(&mut self, d: &[u8], quic: bool) -> bool {
        self.ciphers.clear();
        self.extensions.clear();
        self.curves.clear();
        self.point_formats.clear();
        self.sig_algs.clear();
        self.supported_versions.clear();
        self.alpns.clear();
        self.server_names.clear();
        self.handshake_type = 0;
        let len = d.len();
        let hs = if quic {
            0
        } else {
            // Record: handshake (22), version byte 3 (major and minor are the
            // same byte in ipfixprobe's check).
            if len < 5 || d[0] != 22 || d[1] != 3 {
                return false;
            }
            5
        };
        // Handshake header: type, 3-byte length, version.
        let Some(h) = d.get(hs..hs + 6) else {
            return false;
        };
        if !matches!(h[0], HANDSHAKE_CLIENT_HELLO | HANDSHAKE_SERVER_HELLO) || h[4] != 3 {
            return false;
        }
        self.handshake_type = h[0];
        self.version = u16::from_le_bytes([h[4], h[5]]);
        let client = self.is_client_hello();
        // 32 random bytes, then the session id.
        let sid_off = hs + 6 + 32;
        if sid_off >= len {
            return false;
        }
        let cs_off = sid_off + 1 + usize::from(d[sid_off]);
        if cs_off > len || cs_off + 2 > len {
            return false;
        }
        let comp_off = if client {
            let n = usize::from(be16(d, cs_off));
            let end = cs_off + 2 + n;
            if end > len {
                return false;
            }
            let mut p = cs_off + 2;
            while p < end {
                let c = be16(d, p);
                if !is_grease(c) {
                    self.ciphers.push(c);
                }
                p += 2;
            }
            end
        } else {
            cs_off + 2
        };
        if comp_off > len {
            return false;
        }
        self.ext_off = if client {
            // ipfixprobe checks the length byte against the packet length
            // only, not against the offset.
            let n = usize::from(byte(d, comp_off));
            if 1 + n > len {
                return false;
            }
            comp_off + 1 + n
        } else {
            comp_off + 1
        };
        true
    }

    /// Walks the extensions of the hello parsed last from `d`, calling
    /// `f(self, d, type, payload offset, length)` for each one that fits the
    /// extension block. False when the block's length does not fit.
    pub fn for_each_extension(
        &mut self,
        d: &[u8],
        mut f: impl FnMut(&mut Hello, &[u8], u16, usize, u16),
    ) -> bool {
        let off = self.ext_off;
        if off > d.len() {
            return false;
        }
        let sect = usize::from(be16(d, off));
        if off + sect > d.len() {
            return false;
        }
        let end = off + 2 + sect;
        let mut p = off + 2;
        while p < end {
            let ty = be16(d, p);
            let l = be16(d, p + 2);
            let next = p + 4 + usize::from(l);
            if next > end {
                break;
            }
            f(self, d, ty, p + 4, l);
            p = next;
        }
        true
    }

    /// Parses a ClientHello's extensions (as ipfixprobe's tls plugin does).
    pub fn parse_client_extensions(&mut self, d: &[u8]) -> bool {
        self.for_each_extension(d, |h, d, ty, off, l| {
            h.parse_client_extension(d, ty, off, l);
            h.extensions.push((ty, l));
        })
    }

    /// The handlers of a ClientHello extension (without recording it).
    pub fn parse_client_extension(&mut self, d: &[u8], ty: u16, off: usize, l: u16) {
        match ty {
            EXT_SERVER_NAME => self.parse_server_names(d, off, l),
            EXT_SUPPORTED_GROUPS => self.parse_curves(d, off, l),
            EXT_EC_POINT_FORMATS => self.parse_point_formats(d, off, l),
            EXT_ALPN => self.parse_alpn(d, off, l),
            EXT_SIGNATURE_ALGORITHMS => self.parse_sig_algs(d, off, l),
            EXT_SUPPORTED_VERSIONS => self.parse_supported_versions(d, off, l),
            _ => {}
        }
    }

    /// Parses a ServerHello's extensions: ALPN and supported versions.
    pub fn parse_server_extensions(&mut self, d: &[u8]) -> bool {
        self.for_each_extension(d, |h, d, ty, off, l| match ty {
            EXT_ALPN => h.parse_alpn(d, off, l),
            EXT_SUPPORTED_VERSIONS => h.parse_supported_versions(d, off, l),
            _ => {}
        })
    }

    pub fn parse_server_names(&mut self, d: &[u8], off: usize, l: u16) {
        let l = usize::from(l);
        if l < 2 {
            return;
        }
        let list = usize::from(be16(d, off));
        if 2 + list > l {
            return;
        }
        let end = off + 2 + list;
        let mut p = off + 2;
        while p + 3 <= end {
            let n = usize::from(be16(d, p + 1));
            if p + 3 + n > off + l {
                break;
            }
            self.server_names.push(clamp(p + 3..p + 3 + n, d.len()));
            p += 3 + n;
        }
    }

    pub fn parse_curves(&mut self, d: &[u8], off: usize, l: u16) {
        let l = usize::from(l);
        if l < 2 {
            return;
        }
        let n = usize::from(be16(d, off));
        if 2 + n > l {
            return;
        }
        let end = off + 2 + n;
        let mut p = off + 2;
        while p < end {
            let v = be16(d, p);
            if !is_grease(v) {
                self.curves.push(v);
            }
            p += 2;
        }
    }

    pub fn parse_point_formats(&mut self, d: &[u8], off: usize, l: u16) {
        let l = usize::from(l);
        if l < 1 {
            return;
        }
        let n = usize::from(byte(d, off));
        if 1 + n > l {
            return;
        }
        // A one-byte value is never GREASE.
        for i in 0..n {
            self.point_formats.push(u16::from(byte(d, off + 1 + i)));
        }
    }

    pub fn parse_alpn(&mut self, d: &[u8], off: usize, l: u16) {
        let l = usize::from(l);
        if l < 2 {
            return;
        }
        let n = usize::from(be16(d, off));
        if 2 + n > l {
            return;
        }
        let begin = off + 2;
        let end = begin + n;
        let mut p = begin;
        while p < end {
            let k = usize::from(byte(d, p));
            // ipfixprobe's bound: from the list start, the extension length.
            if p + 1 + k > begin + l {
                break;
            }
            self.alpns.push(clamp(p + 1..p + 1 + k, d.len()));
            p += 1 + k;
        }
    }

    pub fn parse_sig_algs(&mut self, d: &[u8], off: usize, l: u16) {
        for i in 0..usize::from(l) / 2 {
            self.sig_algs.push(be16(d, off + 2 * i));
        }
    }

    pub fn parse_supported_versions(&mut self, d: &[u8], off: usize, l: u16) {
        if self.is_server_hello() {
            if l >= 2 {
                self.supported_versions.push(be16(d, off));
            }
            return;
        }
        if l < 1 {
            return;
        }
        let n = usize::from(byte(d, off));
        if 1 + n > usize::from(l) {
            return;
        }
        for i in 0..n / 2 {
            let v = be16(d, off + 1 + 2 * i);
            if !is_grease(v) {
                self.supported_versions.push(v);
            }
        }
    }

    /// Collects Google user-agent parameters from a QUIC transport
    /// parameters extension.
    pub fn parse_quic_user_agent(&mut self, d: &[u8], off: usize, l: u16) {
        let end = off + usize::from(l);
        let mut p = off;
        while p < end {
            let mut o = p;
            let id = varint(d, &mut o);
            let n = varint(d, &mut o);
            let stop = usize::try_from(n).map_or(usize::MAX, |n| o.saturating_add(n));
            if stop > end {
                return;
            }
            if id == TP_GOOGLE_USER_AGENT {
                self.user_agents.push(clamp(o..stop, d.len()));
            }
            p = stop;
        }
    }
}

/// What ipfixprobe's fixed string buffers end up holding after it saves a
/// list of names into one (`size` bytes, names NUL-separated, a name that
/// does not fit with 2 spare bytes skipped): the first name that fits, cut
/// at its first NUL. None when the list is empty (the buffer is left as it
/// was).
pub fn saved_name<'a>(d: &'a [u8], names: &[Range<usize>], size: usize) -> Option<&'a [u8]> {
    if names.is_empty() {
        return None;
    }
    let name = names
        .iter()
        .map(|r| d.get(r.clone()).unwrap_or_default())
        .find(|n| n.len() + 2 <= size)
        .unwrap_or_default();
    Some(name.split(|&b| b == 0).next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x1a1a));
        assert!(!is_grease(0) && !is_grease(0x0a1a) && !is_grease(0x0303));
    }

    #[test]
    fn varints() {
        let d = [0x25, 0x7b, 0xbd, 0x9d, 0x7f, 0x3e, 0x7d];
        let mut o = 0;
        assert_eq!(varint(&d, &mut o), 0x25);
        assert_eq!((varint(&d, &mut o), o), (0x3bbd, 3));
        let mut o = 0;
        assert_eq!((varint(&[0x80, 0, 0x31, 0x29], &mut o), o), (0x3129, 4));
        let mut o = 5;
        assert_eq!((varint(&d, &mut o), o), (0x3e, 6));
        let mut o = 0;
        assert_eq!((varint(&[0xc0], &mut o), o), (0, 8));
    }

    #[test]
    fn saved_names_follow_the_buffer_rules() {
        let d = b"abc\0defghi";
        assert_eq!(saved_name(d, &[], 255), None);
        assert_eq!(saved_name(d, &[0..5, 5..10], 255), Some(&b"abc"[..]));
        assert_eq!(saved_name(d, &[0..10, 5..10], 9), Some(&b"efghi"[..]));
        let long = vec![Range { start: 0, end: 10 }];
        assert_eq!(saved_name(d, long.as_slice(), 9), Some(&b""[..]));
    }

    #[test]
    fn short_and_odd_input_does_not_panic() {
        let mut h = Hello::default();
        let mut buf = vec![22u8, 3, 1, 0, 0, 1, 0, 0, 0, 3, 3];
        buf.resize(60, 0xff);
        for n in 0..buf.len() {
            for quic in [false, true] {
                if h.parse(&buf[..n], quic) {
                    h.parse_client_extensions(&buf[..n]);
                    h.parse_server_extensions(&buf[..n]);
                }
            }
        }
        let all = [0xffu8; 40];
        h.parse_quic_user_agent(&all, 0, 40);
        h.parse_alpn(&all, 30, 0xffff);
        h.parse_server_names(&all, 38, 0xffff);
        h.parse_curves(&all, 39, 0xffff);
        h.parse_sig_algs(&all, 39, 0xffff);
    }
}
