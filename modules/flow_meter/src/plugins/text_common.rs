//! Helpers shared by the text-protocol plugins (http, rtsp, sip, smtp,
//! ssdp): fixed-capacity NUL-terminated buffers that behave like the C
//! character arrays ipfixprobe keeps its strings in (so truncations and the
//! effect of a NUL byte inside a value come out the same), and the searches
//! its parsers use. Everything is bounds-checked: a search or copy that
//! would leave the payload finds nothing or copies less.

/// Position of the first `b` in `hay`.
#[inline]
pub fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// ipfixprobe's `strnstr`: the first occurrence of `needle` wholly inside
/// the first `hay.len()` bytes, the search ending at a NUL byte of `hay`.
pub fn strnstr(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let mut i = 0usize;
    loop {
        // Scan to the next `first`, stopping at a NUL or the end.
        loop {
            let c = *hay.get(i)?;
            if c == 0 {
                return None;
            }
            i += 1;
            if c == first {
                break;
            }
        }
        // `i` is just after the match of `first`.
        let left = hay.len().saturating_sub(i);
        if rest.len() > left {
            return None;
        }
        // strncmp: equal up to the needle's length (a NUL in `hay` where
        // the needle has a byte is a mismatch).
        if hay.get(i..i + rest.len()) == Some(rest) {
            return Some(i - 1);
        }
    }
}

/// The C string in `b`: the bytes before the first NUL.
#[inline]
pub fn cstr(b: &[u8]) -> &[u8] {
    match find_byte(b, 0) {
        Some(n) => b.get(..n).unwrap_or(b),
        None => b,
    }
}

/// A C `char[N]` holding a NUL-terminated string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CBuf<const N: usize> {
    buf: [u8; N],
}

impl<const N: usize> Default for CBuf<N> {
    fn default() -> Self {
        CBuf { buf: [0; N] }
    }
}

impl<const N: usize> CBuf<N> {
    /// The string (up to the first NUL).
    pub fn as_bytes(&self) -> &[u8] {
        cstr(&self.buf)
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.first().is_none_or(|&c| c == 0)
    }

    /// Empties the string (only the first byte is zeroed, as in C).
    pub fn clear(&mut self) {
        if let Some(c) = self.buf.first_mut() {
            *c = 0;
        }
    }

    /// ipfixprobe's `copy_str`: at most N-1 bytes of `src`, then one
    /// trailing LF and after it one trailing CR of the copied part dropped.
    pub fn copy_str(&mut self, src: &[u8]) {
        let mut n = src.len().min(N.saturating_sub(1));
        if let (Some(d), Some(s)) = (self.buf.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        if n >= 1 && self.buf.get(n - 1) == Some(&b'\n') {
            n -= 1;
        }
        if n >= 1 && self.buf.get(n - 1) == Some(&b'\r') {
            n -= 1;
        }
        if let Some(c) = self.buf.get_mut(n) {
            *c = 0;
        }
    }

    /// Plain bounded copy (`strncpy` into the buffer, last byte kept NUL):
    /// at most N-1 bytes, up to the first NUL of `src`.
    pub fn set(&mut self, src: &[u8]) {
        let s = cstr(src);
        let n = s.len().min(N.saturating_sub(1));
        if let (Some(d), Some(s)) = (self.buf.get_mut(..n), s.get(..n)) {
            d.copy_from_slice(s);
        }
        if let Some(c) = self.buf.get_mut(n) {
            *c = 0;
        }
    }

    /// Raw copy (`memcpy` then a NUL): at most N-1 bytes of `src`; the
    /// string ends at the first NUL copied.
    pub fn set_raw(&mut self, src: &[u8]) {
        let n = src.len().min(N.saturating_sub(1));
        if let (Some(d), Some(s)) = (self.buf.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        if let Some(c) = self.buf.get_mut(n) {
            *c = 0;
        }
    }

    /// The raw array (for the quirks that look at bytes past the string).
    pub fn raw(&self) -> &[u8; N] {
        &self.buf
    }

    pub fn raw_mut(&mut self) -> &mut [u8; N] {
        &mut self.buf
    }
}

/// C's `atoi` (glibc: `(int) strtol(s, NULL, 10)`): leading white space,
/// a sign, digits; the value saturates at the `long` range before the cast.
pub fn atoi(s: &[u8]) -> i32 {
    let mut i = 0;
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
        let digit = i64::from(d - b'0');
        match v.checked_mul(10).and_then(|x| x.checked_add(digit)) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    let v = if overflow {
        if neg {
            i64::MIN
        } else {
            i64::MAX
        }
    } else if neg {
        -v
    } else {
        v
    };
    v as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strnstr_like_c() {
        assert_eq!(strnstr(b"ab\r\ncd", b"\r\n"), Some(2));
        assert_eq!(strnstr(b"ab\r", b"\r\n"), None);
        assert_eq!(strnstr(b"a\0\r\n", b"\r\n"), None);
        assert_eq!(strnstr(b"x=y", b"="), Some(1));
        assert_eq!(strnstr(b"", b"="), None);
        assert_eq!(strnstr(b"\r\r\n", b"\r\n"), Some(1));
    }

    #[test]
    fn copy_str_truncates_and_strips() {
        let mut b = CBuf::<8>::default();
        b.copy_str(b"abc\r\n");
        assert_eq!(b.as_bytes(), b"abc");
        b.copy_str(b"0123456789");
        assert_eq!(b.as_bytes(), b"0123456");
        b.copy_str(b"a\0b");
        assert_eq!(b.as_bytes(), b"a");
        b.copy_str(b"");
        assert!(b.is_empty());
    }

    #[test]
    fn atoi_like_glibc() {
        assert_eq!(atoi(b" 200"), 200);
        assert_eq!(atoi(b"-5x"), -5);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"99999999999999999999999"), -1);
        assert_eq!(atoi(b"4294967496"), 200);
    }
}
