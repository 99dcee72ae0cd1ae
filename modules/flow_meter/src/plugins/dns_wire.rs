//! DNS wire-format helpers shared by the `dns`, `passivedns`, `dnssd` and
//! `netbios` plugins: a bounds-checked view of one DNS message with
//! ipfixprobe's name rules.
//!
//! ipfixprobe's rules for names (its `get_name` / `get_name_length`):
//! * a name is decompressed by following `11xxxxxx` pointers; every label and
//!   every pointer counts, and more than 128 of them is an error (a pointer
//!   loop ends there);
//! * a label longer than 63 bytes, or one reaching past the message, is an
//!   error; a pointer past the message is an error;
//! * labels are joined with `.` (no trailing dot; the root name is empty);
//! * the *length* of a name in place (to skip it) only walks the labels up
//!   to a zero byte or a pointer, checking each step lies in the message.
//!
//! Reads past the end of the message give zero bytes (ipfixprobe reads the
//! bytes after the payload there; they are usually padding).

/// One DNS message (after a TCP length prefix).
#[derive(Clone, Copy)]
pub struct Msg<'a> {
    pub data: &'a [u8],
}

/// A name or record ran outside the message (ipfixprobe throws).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bad;

/// How many labels and pointers a name may have (ipfixprobe's counter is
/// checked before its increment against 127).
const MAX_LABELS: u32 = 128;

impl<'a> Msg<'a> {
    pub fn new(data: &'a [u8]) -> Msg<'a> {
        Msg { data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The byte at `off`, zero past the end.
    #[inline]
    pub fn u8(&self, off: usize) -> u8 {
        self.data.get(off).copied().unwrap_or(0)
    }

    #[inline]
    pub fn u16(&self, off: usize) -> u16 {
        u16::from_be_bytes([self.u8(off), self.u8(off.wrapping_add(1))])
    }

    #[inline]
    pub fn u32(&self, off: usize) -> u32 {
        u32::from_be_bytes([
            self.u8(off),
            self.u8(off.wrapping_add(1)),
            self.u8(off.wrapping_add(2)),
            self.u8(off.wrapping_add(3)),
        ])
    }

    /// `n` bytes at `off` (zero-filled past the end) into `out`.
    pub fn copy_to(&self, off: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.u8(off.wrapping_add(i));
        }
    }

    /// The bytes `off..off + n` clipped to the message.
    pub fn slice(&self, off: usize, n: usize) -> &'a [u8] {
        let end = off.saturating_add(n).min(self.data.len());
        self.data.get(off..end).unwrap_or(&[])
    }

    /// Appends the (decompressed) name at `off` to `out`, labels joined by
    /// `.`.
    pub fn name(&self, mut off: usize, out: &mut Vec<u8>) -> Result<(), Bad> {
        let len = self.data.len();
        if off > len {
            return Err(Bad);
        }
        let start = out.len();
        let mut count = 0u32;
        loop {
            let b = self.u8(off);
            if b == 0 {
                break;
            }
            if b & 0xc0 == 0xc0 {
                off = (usize::from(b & 0x3f) << 8) | usize::from(self.u8(off + 1));
                if count > MAX_LABELS - 1 || off > len {
                    return Err(Bad);
                }
                count += 1;
                continue;
            }
            let l = usize::from(b);
            if count > MAX_LABELS - 1 || l > 63 || off + l + 2 > len {
                return Err(Bad);
            }
            count += 1;
            if out.len() > start {
                out.push(b'.');
            }
            out.extend_from_slice(self.slice(off + 1, l));
            off += l + 1;
        }
        Ok(())
    }

    /// How many bytes the name at `off` takes in place.
    pub fn name_len(&self, off: usize) -> Result<usize, Bad> {
        let len = self.data.len();
        let mut n = 0usize;
        let mut p = off;
        loop {
            if p.saturating_add(1) > len {
                return Err(Bad);
            }
            let b = self.u8(p);
            if b == 0 {
                return Ok(n + 1);
            }
            if b & 0xc0 == 0xc0 {
                return Ok(n + 2);
            }
            n += usize::from(b) + 1;
            p += usize::from(b) + 1;
        }
    }
}

/// Appends `a.b.c.d`.
pub fn write_ipv4(o: &[u8; 4], out: &mut Vec<u8>) {
    for (i, b) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_num(out, u64::from(*b));
    }
}

/// Appends `v` in decimal.
pub fn push_num(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends an IPv6 address as glibc's `inet_ntop` prints it: the first
/// longest run (≥ 2) of zero groups becomes `::`; `::a.b.c.d` and
/// `::ffff:a.b.c.d` end in dotted-quad form.
pub fn write_ipv6(b: &[u8; 16], out: &mut Vec<u8>) {
    let mut w = [0u16; 8];
    for (i, x) in w.iter_mut().enumerate() {
        *x = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
    }
    let (mut best, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let s = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - s > best_len {
                best = s;
                best_len = i - s;
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
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            write_ipv4(&[b[12], b[13], b[14], b[15]], out);
            return;
        }
        let v = w[i];
        let mut started = false;
        for shift in [12u16, 8, 4, 0] {
            let d = (v >> shift) & 0xf;
            if d != 0 || started || shift == 0 {
                out.push(HEX[usize::from(d)]);
                started = true;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_pointers() {
        // header (12 bytes) then "www.cesnet.cz" then a pointer to "cesnet.cz".
        let mut m = vec![0u8; 12];
        m.extend_from_slice(b"\x03www\x06cesnet\x02cz\x00");
        m.extend_from_slice(b"\x04mail\xc0\x10");
        let msg = Msg::new(&m);
        let mut s = Vec::new();
        assert_eq!(msg.name(12, &mut s), Ok(()));
        assert_eq!(s, b"www.cesnet.cz");
        assert_eq!(msg.name_len(12), Ok(15));
        s.clear();
        assert_eq!(msg.name(27, &mut s), Ok(()));
        assert_eq!(s, b"mail.cesnet.cz");
        assert_eq!(msg.name_len(27), Ok(7));
    }

    #[test]
    fn loops_and_overruns_are_errors() {
        let m = b"\xc0\x00";
        let mut s = Vec::new();
        assert_eq!(Msg::new(m).name(0, &mut s), Err(Bad));
        assert_eq!(Msg::new(b"\x05ab").name(0, &mut s), Err(Bad));
        assert_eq!(Msg::new(b"\x05ab").name_len(0), Err(Bad));
        assert_eq!(Msg::new(b"\x41").name(0, &mut s), Err(Bad));
        assert_eq!(Msg::new(b"").name(1, &mut s), Err(Bad));
        // A root name at the very end reads as empty.
        s.clear();
        assert_eq!(Msg::new(b"ab").name(2, &mut s), Ok(()));
        assert!(s.is_empty());
    }

    #[test]
    fn ipv6_text_like_glibc() {
        let t = |b: [u8; 16]| {
            let mut o = Vec::new();
            write_ipv6(&b, &mut o);
            String::from_utf8(o).unwrap_or_default()
        };
        let mut a = [0u8; 16];
        assert_eq!(t(a), "::");
        a[15] = 1;
        assert_eq!(t(a), "::1");
        a[10] = 0xff;
        a[11] = 0xff;
        a[12] = 1;
        assert_eq!(t(a), "::ffff:1.0.0.1");
        let b = [
            0x2a, 0x00, 0x14, 0x50, 0x40, 0x01, 0x08, 0x1c, 0, 0, 0, 0, 0, 0, 0x20, 0x0e,
        ];
        assert_eq!(t(b), "2a00:1450:4001:81c::200e");
        let c = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(t(c), "1:0:1::1:0:0");
    }
}
