//! `tls`: the ClientHello and ServerHello of a flow (ipfixprobe 5.7's tls
//! plugin). Fields: `string TLS_SNI, TLS_ALPN, uint16 TLS_VERSION,
//! bytes TLS_JA3, string TLS_JA4, uint16* TLS_EXT_TYPE, TLS_EXT_LEN`.
//!
//! ipfixprobe's rules, kept as they are:
//!
//! * every packet of a flow without the extension is tried (first packet
//!   and later ones, either direction); the extension is attached at the
//!   first ClientHello that parses within one packet;
//! * a ServerHello parsed **before** any ClientHello still fills the
//!   plugin's pending record (ALPN, version, "server hello seen"), and that
//!   record goes to the next flow whose ClientHello parses — possibly
//!   another flow (ipfixprobe reuses one pending record per plugin);
//! * once attached, packets are parsed until a ServerHello is seen: a later
//!   ClientHello overwrites version, SNI (if it has one), JA3 and JA4 (the
//!   JA4 buffer is overwritten in place, a shorter JA4 keeps the tail of the
//!   longer one), the extension lists stay those of the first ClientHello;
//! * ServerHello: `TLS_ALPN` = its ALPN (so empty for TLS 1.3),
//!   `TLS_VERSION` = its first supported_versions entry when present;
//! * `TLS_JA3` = MD5 (16 bytes) of `version,ciphers,extensions,groups,
//!   point formats` without GREASE, version as the little-endian read of the
//!   handshake version (see `tls_hello`);
//! * `TLS_JA4`: ipfixprobe's variant — counts not zero-padded, the
//!   extension count includes GREASE, the signature algorithms are hashed
//!   together with the extensions (`exts_sigalgs`) even when empty, hex
//!   nibbles of non-alphanumeric ALPN characters in upper case;
//! * `TLS_EXT_TYPE`/`TLS_EXT_LEN`: the first 30 ClientHello extensions in
//!   wire order, GREASE included.
//!
//! The hashes use RustCrypto's `md-5` and `sha2`.

use super::tls_hello::{is_grease, saved_name, Hello, EXT_ALPN, EXT_SERVER_NAME};
use super::{parse_options, Extension, Hooks, PEN_CESNET, PEN_FLOWMON};
use super::{ty, FieldDef, FieldSink, FieldValue, FlowCtx, Ie, ProcessPlugin, Verdict};
use crate::parser::Packet;
use md5::{Digest, Md5};
use sha2::Sha256;

/// ipfixprobe's string buffer size (SNI, ALPN).
const BUF: usize = 255;
/// At most this many extensions are exported.
pub const MAX_EXT: usize = 30;

/// The plugin's per-flow record.
#[derive(Clone, Debug)]
pub struct TlsExt {
    pub version: u16,
    pub alpn: Vec<u8>,
    pub sni: Vec<u8>,
    pub ja3: [u8; 16],
    /// ipfixprobe's 36-byte JA4 buffer (NUL-terminated when shorter).
    pub ja4: [u8; 36],
    pub server_hello_parsed: bool,
    pub ext_types: [u16; MAX_EXT],
    pub ext_lens: [u16; MAX_EXT],
    pub ext_count: usize,
}

impl Default for TlsExt {
    fn default() -> TlsExt {
        TlsExt {
            version: 0,
            alpn: Vec::new(),
            sni: Vec::new(),
            ja3: [0; 16],
            ja4: [0; 36],
            server_hello_parsed: false,
            ext_types: [0; MAX_EXT],
            ext_lens: [0; MAX_EXT],
            ext_count: 0,
        }
    }
}

impl TlsExt {
    pub fn ja4_str(&self) -> &[u8] {
        self.ja4.split(|&b| b == 0).next().unwrap_or_default()
    }
}

impl Extension for TlsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(&self.sni));
        out.put(1, FieldValue::Str(&self.alpn));
        out.put(2, FieldValue::U16(self.version));
        out.put(3, FieldValue::Bytes(&self.ja3));
        out.put(4, FieldValue::Str(self.ja4_str()));
        let n = self.ext_count.min(MAX_EXT);
        out.put(5, FieldValue::U16s(&self.ext_types[..n]));
        out.put(6, FieldValue::U16s(&self.ext_lens[..n]));
    }
}

/// The `tls` plugin.
#[derive(Default)]
pub struct Tls {
    /// The record not yet attached to a flow (ipfixprobe's `ext_ptr`).
    pending: Option<TlsExt>,
    hello: Hello,
    scratch: String,
}

impl Tls {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::<Tls>::default())
    }

    /// Tries `pkt` as a flow without the extension: attaches the pending
    /// record at a ClientHello.
    fn add_record(&mut self, f: FlowCtx<'_>, pkt: &Packet) {
        let ext = self.pending.get_or_insert_with(TlsExt::default);
        if parse_into(
            &mut self.hello,
            &mut self.scratch,
            pkt.payload(),
            ext,
            f.flow.protocol,
        ) {
            if let Some(ext) = self.pending.take() {
                f.exts.add(ext);
            }
        }
    }
}

/// Whether `d` starts as the TLS record [`Hello::parse`] accepts (handshake
/// type 22, major version 3, a whole record header): anything else parses
/// to nothing, so the hooks skip it early.
fn may_be_handshake(d: &[u8]) -> bool {
    d.len() >= 5 && d[0] == 22 && d[1] == 3
}

/// Parses one payload into `rec`; true when it was a ClientHello (the
/// record is then ready to be attached).
pub fn parse_into(h: &mut Hello, s: &mut String, d: &[u8], rec: &mut TlsExt, proto: u8) -> bool {
    if !h.parse(d, false) {
        return false;
    }
    if h.is_client_hello() {
        if !h.parse_client_extensions(d) {
            return false;
        }
        if rec.ext_count == 0 {
            let n = h.extensions.len().min(MAX_EXT);
            for (i, &(t, l)) in h.extensions.iter().take(n).enumerate() {
                rec.ext_types[i] = t;
                rec.ext_lens[i] = l;
            }
            rec.ext_count = n;
        }
        rec.version = h.version;
        if let Some(n) = saved_name(d, &h.server_names, BUF) {
            rec.sni.clear();
            rec.sni.extend_from_slice(n);
        }
        ja3_string(h, s);
        rec.ja3 = Md5::digest(s.as_bytes()).into();
        ja4_string(h, d, proto, s);
        let b = s.as_bytes();
        let n = b.len().min(rec.ja4.len());
        rec.ja4[..n].copy_from_slice(&b[..n]);
        true
    } else {
        if !h.parse_server_extensions(d) {
            return false;
        }
        rec.server_hello_parsed = true;
        if let Some(n) = saved_name(d, &h.alpns, BUF) {
            rec.alpn.clear();
            rec.alpn.extend_from_slice(n);
        }
        if let Some(&v) = h.supported_versions.first() {
            rec.version = v;
        }
        false
    }
}

fn push_dec_list(s: &mut String, v: impl Iterator<Item = u16>) {
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_dec(s, x);
    }
}

// JA3/JA4 are built for every ClientHello: plain digit pushes instead of
// `write!`, whose formatting machinery showed in the flow_meter profile.
fn push_dec(s: &mut String, x: impl itoa::Integer) {
    s.push_str(itoa::Buffer::new().format(x));
}

fn push_hex(s: &mut String, x: u64, digits: u32) {
    for i in (0..digits).rev() {
        let n = ((x >> (4 * i)) & 0xf) as usize;
        s.push(char::from(b"0123456789abcdef"[n]));
    }
}

/// The JA3 text of the ClientHello in `h`, into `s`.
pub fn ja3_string(h: &Hello, s: &mut String) {
    s.clear();
    push_dec(s, h.version);
    s.push(',');
    push_dec_list(s, h.ciphers.iter().copied());
    s.push(',');
    push_dec_list(
        s,
        h.extensions.iter().map(|e| e.0).filter(|&t| !is_grease(t)),
    );
    s.push(',');
    push_dec_list(s, h.curves.iter().copied());
    s.push(',');
    push_dec_list(s, h.point_formats.iter().copied());
}

fn version_label(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// One character of the JA4 ALPN label: the byte itself when alphanumeric,
/// else a hex nibble (ipfixprobe shifts the byte as a signed char and
/// writes digits above 9 as `'A' + n - 10` in a char).
fn alpn_char(b: u8, high: bool) -> char {
    if b.is_ascii_alphanumeric() {
        return char::from(b);
    }
    let n = if high {
        ((b as i8) >> 4) as u8
    } else {
        b & 0x0f
    };
    char::from(if n < 10 {
        b'0' + n
    } else {
        b'A'.wrapping_add(n - 10)
    })
}

/// `%04x` comma-joined.
fn push_hex_list(s: &mut String, v: &[u16]) {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_hex(s, u64::from(*x), 4);
    }
}

fn push_hash12(out: &mut String, text: &str) {
    let d = Sha256::digest(text.as_bytes());
    for b in d.iter().take(6) {
        push_hex(out, u64::from(*b), 2);
    }
}

/// ipfixprobe's JA4 of the ClientHello in `h` (parsed from `d`), into `s`.
pub fn ja4_string(h: &Hello, d: &[u8], proto: u8, s: &mut String) {
    s.clear();
    s.push(if proto == 17 { 'q' } else { 't' });
    // The highest supported version, compared as signed 16-bit numbers.
    let v = h
        .supported_versions
        .iter()
        .max_by_key(|&&v| v as i16)
        .copied()
        .unwrap_or(h.version);
    s.push_str(version_label(v));
    s.push(if h.server_names.is_empty() { 'i' } else { 'd' });
    push_dec(s, h.ciphers.len().min(99));
    push_dec(s, h.extensions.len().min(99));
    let alpn = h.alpns.first().and_then(|r| d.get(r.clone()));
    match alpn.and_then(|a| Some((*a.first()?, *a.last()?))) {
        Some((first, last)) => {
            s.push(alpn_char(first, true));
            s.push(alpn_char(last, false));
        }
        None => s.push_str("00"),
    }
    s.push('_');
    let mut text = String::new();
    let mut ciphers = h.ciphers.clone();
    ciphers.sort_unstable();
    if ciphers.is_empty() {
        s.push_str("000000000000");
    } else {
        push_hex_list(&mut text, &ciphers);
        push_hash12(s, &text);
    }
    s.push('_');
    let mut exts: Vec<u16> = h
        .extensions
        .iter()
        .map(|e| e.0)
        .filter(|&t| t != EXT_ALPN && t != EXT_SERVER_NAME && !is_grease(t))
        .collect();
    exts.sort_unstable();
    text.clear();
    push_hex_list(&mut text, &exts);
    text.push('_');
    push_hex_list(&mut text, h.sig_algs.get(1..).unwrap_or_default());
    push_hash12(s, &text);
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "TLS_SNI",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 808,
        }),
    ),
    FieldDef::new(
        "TLS_ALPN",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 337,
        }),
    ),
    FieldDef::new(
        "TLS_VERSION",
        ty::U16,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 333,
        }),
    ),
    FieldDef::new(
        "TLS_JA3",
        ty::BYTES,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 357,
        }),
    ),
    FieldDef::new(
        "TLS_JA4",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 809,
        }),
    ),
    // Basic lists in ipfixprobe's IPFIX export, of these elements.
    FieldDef::new(
        "TLS_EXT_TYPE",
        ty::U16S,
        Some(Ie {
            pen: PEN_CESNET,
            id: 802,
        }),
    ),
    FieldDef::new(
        "TLS_EXT_LEN",
        ty::U16S,
        Some(Ie {
            pen: PEN_CESNET,
            id: 803,
        }),
    ),
];

impl ProcessPlugin for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if may_be_handshake(pkt.payload()) {
            self.add_record(f, pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        // Only a handshake record can change anything (the parser refuses
        // every other payload first thing): decide that before reading the
        // flow's extensions, which are cold memory on most packets.
        if !may_be_handshake(pkt.payload()) {
            return Verdict::CONTINUE;
        }
        let proto = f.flow.protocol;
        if let Some(ext) = f.exts.get_mut::<TlsExt>() {
            if !ext.server_hello_parsed {
                parse_into(
                    &mut self.hello,
                    &mut self.scratch,
                    pkt.payload(),
                    ext,
                    proto,
                );
            }
            return Verdict::CONTINUE;
        }
        self.add_record(f, pkt);
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record: GREASE cipher and extension, SNI, ALPN h2,
    /// groups, point formats, signature algorithms, supported versions.
    pub fn client_hello() -> Vec<u8> {
        let mut ext = Vec::new();
        let mut add = |t: u16, body: &[u8]| {
            ext.extend_from_slice(&t.to_be_bytes());
            ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
            ext.extend_from_slice(body);
        };
        add(0x0a0a, &[]);
        add(0, b"\x00\x0e\x00\x00\x0bexample.com");
        add(10, &[0, 6, 0x1a, 0x1a, 0, 0x1d, 0, 0x17]);
        add(11, &[1, 0]);
        add(13, &[0, 4, 4, 3, 8, 4]);
        add(16, b"\x00\x03\x02h2");
        add(43, &[4, 0x03, 0x04, 0x03, 0x03]);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 6, 0x2a, 0x2a, 0x13, 0x01, 0xc0, 0x2f]);
        body.extend_from_slice(&[1, 0]); // compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn server_hello(alpn: &[u8], version: Option<u16>) -> Vec<u8> {
        let mut ext = Vec::new();
        if !alpn.is_empty() {
            ext.extend_from_slice(&16u16.to_be_bytes());
            ext.extend_from_slice(&(alpn.len() as u16 + 3).to_be_bytes());
            ext.extend_from_slice(&(alpn.len() as u16 + 1).to_be_bytes());
            ext.push(alpn.len() as u8);
            ext.extend_from_slice(alpn);
        }
        if let Some(v) = version {
            ext.extend_from_slice(&[0, 43, 0, 2]);
            ext.extend_from_slice(&v.to_be_bytes());
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x22; 32]);
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![2, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn client_hello_gives_sni_ja3_ja4_and_extensions() {
        let d = client_hello();
        let mut rec = TlsExt::default();
        let (mut h, mut s) = (Hello::default(), String::new());
        assert!(parse_into(&mut h, &mut s, &d, &mut rec, 6));
        assert_eq!(rec.sni, b"example.com");
        assert_eq!(rec.version, 771);
        ja3_string(&h, &mut s);
        assert_eq!(s, "771,4865-49199,0-10-11-13-16-43,29-23,0");
        assert_eq!(hex(&rec.ja3), hex(&Md5::digest(s.as_bytes())));
        let ja4 = std::str::from_utf8(rec.ja4_str()).unwrap_or_default();
        // Sorted ciphers "1301,c02f"; extensions "000a,000b,000d,002b" and
        // the signature algorithms "0403,0804".
        let mut want = String::from("t13d27h2_");
        push_hash12(&mut want, "1301,c02f");
        want.push('_');
        push_hash12(&mut want, "000a,000b,000d,002b_0403,0804");
        assert_eq!(ja4, want);
        assert_eq!(rec.ext_count, 7);
        assert_eq!(&rec.ext_types[..7], &[0x0a0a, 0, 10, 11, 13, 16, 43]);
        assert_eq!(&rec.ext_lens[..7], &[0, 16, 8, 2, 6, 5, 5]);
    }

    #[test]
    fn server_hello_gives_alpn_and_version() {
        let mut rec = TlsExt::default();
        let (mut h, mut s) = (Hello::default(), String::new());
        assert!(!parse_into(
            &mut h,
            &mut s,
            &server_hello(b"h2", None),
            &mut rec,
            6
        ));
        assert!(rec.server_hello_parsed);
        assert_eq!(rec.alpn, b"h2");
        let mut rec = TlsExt::default();
        parse_into(
            &mut h,
            &mut s,
            &server_hello(b"", Some(0x0304)),
            &mut rec,
            6,
        );
        assert_eq!((rec.version, rec.alpn.len()), (772, 0));
    }

    #[test]
    fn ja4_alpn_label_of_odd_bytes() {
        assert_eq!(alpn_char(b'h', true), 'h');
        assert_eq!(alpn_char(b'/', true), '2');
        assert_eq!(alpn_char(b'/', false), 'F');
        // 0xab as a signed char shifted: 0xfa, written as 'A' + 240 in a char.
        assert_eq!(alpn_char(0xab, true), '1');
    }

    #[test]
    fn truncated_hellos_do_not_parse_or_panic() {
        let d = client_hello();
        let (mut h, mut s) = (Hello::default(), String::new());
        // The extension block starts at 54: cut there, the missing length
        // reads as zero (no extensions), as ipfixprobe's read past the end
        // most likely does; and the block's length is checked without its
        // own 2 bytes, so the last 2 bytes may be missing too.
        for n in 0..d.len() {
            let mut rec = TlsExt::default();
            let ok = parse_into(&mut h, &mut s, &d[..n], &mut rec, 17);
            assert_eq!(ok, n == 54 || n == 55 || n + 2 >= d.len(), "{n}");
        }
        assert!(parse_into(&mut h, &mut s, &d, &mut TlsExt::default(), 17));
    }
}
