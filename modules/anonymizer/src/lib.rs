//! anonymizer: prefix-preserving anonymisation of IP addresses with
//! Crypto-PAn (Xu, Fan, Ammar, Moon, 2002), as NEMEA's anonymizer does it.
//!
//! Crypto-PAn, for an address of `n` bits (32 for IPv4, 128 for IPv6):
//! the 32-byte key's first half is an AES-128 key, its second half,
//! encrypted with that key, is the pad. For every bit position `i` from the
//! most significant, a 16-byte block is made of the address's first `i`
//! bits followed by the pad's remaining bits; the first bit of its AES
//! encryption is bit `i` of a one-time pad, and the result is the address
//! XOR that pad. Two addresses that share a `k`-bit prefix therefore keep a
//! `k`-bit common prefix. De-anonymisation rebuilds the address bit by bit,
//! each pad bit depending only on the bits already recovered.
//!
//! As the C module: IPv4 addresses are anonymised as 32-bit values (the
//! UniRec `ipaddr` stays an IPv4 address), IPv6 ones on all 128 bits;
//! `SRC_IP` and `DST_IP` are handled (unless `-S` / `-D`), and in the string
//! fields `SIP_CALLED_PARTY`, `SIP_CALLING_PARTY`, `SIP_CALL_ID`,
//! `SIP_REQUEST_URI` and `SIP_VIA` the first IPv4 address (else the first
//! IPv6 address) written in the text is replaced. The key is 32 characters
//! taken as bytes, or `0x` and 64 hex digits. `-M` replaces AES by NEMEA's
//! MurmurHash3-like function (faster; not Crypto-PAn, not vetted).
//!
//! Differences from C: an IPv6 address in a string is found as the leftmost
//! longest run of hex digits, colons and dots that parses as an address
//! (C uses a long regular expression with the same intent); end of stream is
//! passed on (C drops it, so the modules after it never stop).

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use std::net::Ipv6Addr;
use unirec::record::{RecordError, RecordRef, MAX_RECORD_SIZE};
use unirec::template::Template;
use unirec::types::{FieldType, Scalar};
use unirec::UrIp;

/// NEMEA's built-in key, used when neither `-k` nor `-f` is given.
pub const DEFAULT_KEY: &str = "01234567890123450123456789012345";

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is {0} characters: give 32 characters, or 0x and 64 hex digits")]
    Length(usize),
    #[error("the key `0x...` has a character that is not a hex digit")]
    NotHex,
}

/// Parses a key as C's `ParseCryptoPAnKey` does: exactly 32 characters are
/// the key bytes; 66 characters `0x` + 64 hex digits are the bytes in hex.
pub fn parse_key(text: &str) -> Result<[u8; 32], KeyError> {
    let b = text.as_bytes();
    let mut key = [0u8; 32];
    match b.len() {
        32 => {
            key.copy_from_slice(b);
            Ok(key)
        }
        66 if b[0] == b'0' && (b[1] | 0x20) == b'x' => {
            for (k, pair) in key.iter_mut().zip(b[2..].chunks_exact(2)) {
                let hex = std::str::from_utf8(pair).map_err(|_| KeyError::NotHex)?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(KeyError::NotHex);
                }
                *k = u8::from_str_radix(hex, 16).map_err(|_| KeyError::NotHex)?;
            }
            Ok(key)
        }
        n => Err(KeyError::Length(n)),
    }
}

/// The key in a key file: its first line without trailing white space.
pub fn key_from_file_text(text: &str) -> Result<[u8; 32], KeyError> {
    parse_key(text.lines().next().unwrap_or("").trim_end())
}

/// The pseudorandom function that makes each pad bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prf {
    /// AES-128: Crypto-PAn proper, compatible with other Crypto-PAn tools.
    Aes,
    /// NEMEA's `-M`: the parity of a 64-bit multiply-rotate hash.
    Murmur,
}

/// Crypto-PAn with one key.
pub struct CryptoPan {
    cipher: Aes128,
    /// The encrypted second half of the key, as a big-endian number.
    pad: u128,
    prf: Prf,
}

/// The `pos` most significant bits of a 128-bit number.
fn top(pos: u32) -> u128 {
    if pos == 0 {
        0
    } else {
        u128::MAX << (128 - pos)
    }
}

/// NEMEA anonymizer's `hash_div8` over a 16-byte block (two little-endian
/// 64-bit words), then its final mix.
fn murmurish(block: &[u8; 16]) -> u32 {
    const C1: u64 = 5333;
    const C2: u64 = 7177;
    const R1: u32 = 19;
    const M1: u64 = 11117;
    const N1: u64 = 14011;
    let mut h: u64 = 42;
    for w in block.chunks_exact(8) {
        let mut k = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(C1).rotate_left(R1).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(R1).wrapping_mul(M1).wrapping_add(N1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}

impl CryptoPan {
    pub fn new(key: &[u8; 32], prf: Prf) -> CryptoPan {
        let cipher = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        cipher.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        CryptoPan {
            cipher,
            pad: u128::from_be_bytes(p),
            prf,
        }
    }

    /// The pad bit for position `pos` of an address whose first `pos` bits
    /// (aligned to the top of a 128-bit number) are those of `prefix`.
    #[inline]
    fn bit(&self, prefix: u128, pos: u32) -> u128 {
        let mask = top(pos);
        let block = ((prefix & mask) | (self.pad & !mask)).to_be_bytes();
        match self.prf {
            Prf::Aes => {
                let mut b = GenericArray::from(block);
                self.cipher.encrypt_block(&mut b);
                u128::from(b[0] >> 7)
            }
            Prf::Murmur => u128::from(murmurish(&block).count_ones() & 1),
        }
    }

    /// Anonymises the `bits` most significant bits of `addr`.
    fn forward(&self, addr: u128, bits: u32) -> u128 {
        let mut otp = 0u128;
        for pos in 0..bits {
            otp |= self.bit(addr, pos) << (127 - pos);
        }
        addr ^ otp
    }

    /// Inverse of [`forward`](Self::forward).
    fn backward(&self, anon: u128, bits: u32) -> u128 {
        let mut orig = 0u128;
        for pos in 0..bits {
            let b = self.bit(orig, pos) ^ ((anon >> (127 - pos)) & 1);
            orig |= b << (127 - pos);
        }
        orig
    }

    pub fn anonymize_v4(&self, addr: u32) -> u32 {
        (self.forward(u128::from(addr) << 96, 32) >> 96) as u32
    }

    pub fn deanonymize_v4(&self, addr: u32) -> u32 {
        (self.backward(u128::from(addr) << 96, 32) >> 96) as u32
    }

    pub fn anonymize_v6(&self, addr: [u8; 16]) -> [u8; 16] {
        self.forward(u128::from_be_bytes(addr), 128).to_be_bytes()
    }

    pub fn deanonymize_v6(&self, addr: [u8; 16]) -> [u8; 16] {
        self.backward(u128::from_be_bytes(addr), 128).to_be_bytes()
    }

    /// A UniRec address, anonymised (`reverse`: de-anonymised); IPv4 stays
    /// IPv4.
    pub fn transform(&self, ip: UrIp, reverse: bool) -> UrIp {
        if ip.is_ipv4() {
            let v4 = u32::from_be_bytes([ip.0[8], ip.0[9], ip.0[10], ip.0[11]]);
            let out = if reverse {
                self.deanonymize_v4(v4)
            } else {
                self.anonymize_v4(v4)
            };
            let mut r = ip;
            r.0[8..12].copy_from_slice(&out.to_be_bytes());
            r
        } else if reverse {
            UrIp(self.deanonymize_v6(ip.0))
        } else {
            UrIp(self.anonymize_v6(ip.0))
        }
    }
}

/// Where the first IPv4 address written in `s` is: the leftmost match of
/// `[0-9]{1,3}(\.[0-9]{1,3}){3}` (the longest one at that position).
fn find_ipv4(s: &[u8]) -> Option<(usize, usize)> {
    let digits = |from: usize| {
        s[from.min(s.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    'start: for start in 0..s.len() {
        let mut at = start;
        for octet in 0..4 {
            let n = digits(at);
            if n == 0 {
                continue 'start;
            }
            if octet < 3 {
                // A shorter octet would be followed by a digit, not a dot.
                if n > 3 || s.get(at + n) != Some(&b'.') {
                    continue 'start;
                }
                at += n + 1;
            } else {
                at += n.min(3);
            }
        }
        return Some((start, at));
    }
    None
}

/// Where the first IPv6 address written in `s` is: the leftmost, then
/// longest, run of hex digits, `:` and `.` that parses as one.
fn find_ipv6(s: &[u8]) -> Option<(usize, usize)> {
    let ok = |c: &u8| c.is_ascii_hexdigit() || *c == b':' || *c == b'.';
    for start in 0..s.len() {
        if !ok(&s[start]) {
            continue;
        }
        let run = s[start..].iter().take_while(|c| ok(c)).count();
        for end in (start + 2..=start + run).rev() {
            let text = std::str::from_utf8(&s[start..end]).unwrap_or("");
            if text.contains(':') && text.parse::<Ipv6Addr>().is_ok() {
                return Some((start, end));
            }
        }
    }
    None
}

/// Replaces the first address written in `s` (IPv4 first, as C) by its
/// transform into `out`; `false` (and `out` untouched) when there is none.
pub fn transform_text(pan: &CryptoPan, s: &[u8], reverse: bool, out: &mut Vec<u8>) -> bool {
    let Some((a, b)) = find_ipv4(s).or_else(|| find_ipv6(s)) else {
        return false;
    };
    let Some(ip) = std::str::from_utf8(&s[a..b]).ok().and_then(UrIp::parse) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(&s[..a]);
    out.extend_from_slice(pan.transform(ip, reverse).to_string().as_bytes());
    out.extend_from_slice(&s[b..]);
    true
}

/// The address fields NEMEA's anonymizer handles.
pub const IP_FIELDS: [&str; 2] = ["SRC_IP", "DST_IP"];
/// The string fields in which an address written as text is replaced.
pub const TEXT_FIELDS: [&str; 5] = [
    "SIP_CALLED_PARTY",
    "SIP_CALLING_PARTY",
    "SIP_CALL_ID",
    "SIP_REQUEST_URI",
    "SIP_VIA",
];

/// Which fields of one template to transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Offsets of `ipaddr` fields.
    ips: Vec<usize>,
    /// Indices of string fields.
    texts: Vec<usize>,
}

impl Plan {
    /// `skip_src` / `skip_dst`: leave SRC_IP / DST_IP alone (`-S` / `-D`).
    pub fn new(t: &Template, skip_src: bool, skip_dst: bool) -> Plan {
        let ip = FieldType::Scalar(Scalar::IpAddr);
        let ips = IP_FIELDS
            .iter()
            .filter(|n| !(skip_src && **n == "SRC_IP" || skip_dst && **n == "DST_IP"))
            .filter_map(|n| t.find_typed(n, ip))
            .filter_map(|i| t.field(i).map(|f| f.offset()))
            .collect();
        let texts = TEXT_FIELDS
            .iter()
            .filter_map(|n| t.find_typed(n, FieldType::String))
            .collect();
        Plan { ips, texts }
    }

    /// True when the template has nothing to transform.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.texts.is_empty()
    }
}

/// Reusable buffers for [`transform_record`].
#[derive(Default)]
pub struct Scratch {
    text: Vec<u8>,
    vars: Vec<u8>,
}

/// Writes `data` (a record of `t`) with its addresses transformed into `out`.
pub fn transform_record(
    pan: &CryptoPan,
    t: &Template,
    plan: &Plan,
    data: &[u8],
    reverse: bool,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let rec = RecordRef::new_checked(t, data)?;
    out.clear();
    out.extend_from_slice(data);
    for &off in &plan.ips {
        if let Some(b) = out.get_mut(off..off + 16) {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(b);
            b.copy_from_slice(&pan.transform(UrIp(ip), reverse).0);
        }
    }
    if plan.texts.is_empty() {
        return Ok(());
    }
    // Strings may change length: lay the variable part out again.
    let fixed = t.fixed_size();
    out.truncate(fixed);
    scratch.vars.clear();
    for i in t.first_variable()..t.len() {
        let raw = rec.raw(i).unwrap_or(&[]);
        let bytes =
            if plan.texts.contains(&i) && transform_text(pan, raw, reverse, &mut scratch.text) {
                &scratch.text[..]
            } else {
                raw
            };
        let at = t.field(i).map_or(0, |f| f.offset());
        let entry = [scratch.vars.len() as u16, bytes.len() as u16];
        if let Some(e) = out.get_mut(at..at + 4) {
            e[..2].copy_from_slice(&entry[0].to_le_bytes());
            e[2..].copy_from_slice(&entry[1].to_le_bytes());
        }
        scratch.vars.extend_from_slice(bytes);
    }
    out.extend_from_slice(&scratch.vars);
    if out.len() > MAX_RECORD_SIZE {
        return Err(RecordError::TooLarge(out.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
