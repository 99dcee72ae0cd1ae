//! `quic`: QUIC long-header packets and the client's Initial (ipfixprobe
//! 5.7's quic plugin). Fields: `string QUIC_SNI, QUIC_USER_AGENT,
//! uint32 QUIC_VERSION, QUIC_CLIENT_VERSION, uint64 QUIC_TOKEN_LENGTH,
//! bytes QUIC_OCCID, QUIC_OSCID, QUIC_SCID, QUIC_RETRY_SCID,
//! uint8 QUIC_MULTIPLEXED, QUIC_ZERO_RTT, uint16 QUIC_SERVER_PORT,
//! uint8* QUIC_PACKETS, uint8 QUIC_CH_PARSED, uint16* QUIC_TLS_EXT_TYPE,
//! QUIC_TLS_EXT_LEN, bytes QUIC_TLS_EXT`.
//!
//! ipfixprobe's rules, kept as they are:
//!
//! * after each packet is counted (first packet included), UDP payloads
//!   starting with a long header of a known version (IETF drafts, v1, v2,
//!   mvfst, picoquic, quant, quic-go, quicly, msquic, …) are parsed, with
//!   coalesced packets;
//! * Initial packets are decrypted with the client's initial keys (RFC 9001
//!   §5: HKDF-SHA256 from the version's salt and the DCID of the flow's
//!   first Initial, or of this packet when that fails; v2 labels for v2),
//!   header protection removed with AES-128-ECB, payload opened with
//!   AES-128-GCM, CRYPTO frames copied into one 1500-byte buffer at their
//!   offsets, and the ClientHello parsed by the shared TLS parser
//!   (`tls_hello`). The header authenticated is everything from the start of
//!   the datagram (so a coalesced Initial after another packet does not
//!   decrypt, as in ipfixprobe). Server Initials use other keys and are not
//!   decrypted;
//! * a packet whose TLS part did not parse is not "QUIC" (it adds only its
//!   QUIC-bit entry to `QUIC_PACKETS` of a flow already known as QUIC) —
//!   except that a datagram whose first long header is cut short, or whose
//!   coalesced packets stop parsing, counts as QUIC when any flag (the QUIC
//!   bit included) was seen;
//! * `QUIC_TLS_EXT` = the ALPN and transport-parameter extension payloads
//!   concatenated; `QUIC_USER_AGENT` = Google's 0x3129 transport parameter;
//! * `QUIC_PACKETS[i]` for the first 30 packets: Initial 0x01, 0-RTT 0x02,
//!   Handshake 0x04, Retry 0x08, version negotiation 0x10, QUIC bit 0x80;
//! * version negotiation flushes the flow; connection ids, server port,
//!   multiplexing and 0-RTT counting follow ipfixprobe's bookkeeping (see
//!   the functions below).
//!
//! Where ipfixprobe reads past the payload we read zeros. Crypto: RustCrypto
//! `hkdf`, `sha2`, `aes`, `aes-gcm`.

use super::tls_hello::{
    byte, saved_name, Hello, EXT_ALPN, EXT_QUIC_TP, EXT_QUIC_TP_V1, EXT_QUIC_TP_V2, EXT_SERVER_NAME,
};
use super::{parse_options, Extension, Hooks, PEN_CESNET};
use super::{ty, FieldDef, FieldSink, FieldValue, FlowCtx, Ie, ProcessPlugin, Verdict};
use crate::cache::Flow;
use crate::parser::Packet;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use sha2::Sha256;

/// ipfixprobe's buffer size for decrypted and reassembled payloads.
const BUF: usize = 1500;
/// The longest header (through the packet number) ipfixprobe decrypts.
const MAX_HEADER_LEN: usize = 67 + 256;
const MIN_PACKET_LEN: usize = 8;
const MAX_CID_LEN: usize = 20;
/// String buffers (SNI, user agent).
const STR_BUF: usize = 255;
pub const MAX_ELEMS: usize = 30;
const UNUSED_TOKEN_LEN: u64 = u64::MAX;

// Packet types (v2's are mapped onto these).
const INITIAL: u8 = 0;
const ZERO_RTT: u8 = 1;
const HANDSHAKE: u8 = 2;
const RETRY: u8 = 3;
const VERSION_NEGOTIATION: u8 = 7;
const UNKNOWN: u8 = 0xff;

const F_INITIAL: u8 = 0x01;
const F_ZERO_RTT: u8 = 0x02;
const F_HANDSHAKE: u8 = 0x04;
const F_RETRY: u8 = 0x08;
const F_VERSION_NEGOTIATION: u8 = 0x10;

const SALT_DRAFT_7: [u8; 20] = [
    0xaf, 0xc8, 0x24, 0xec, 0x5f, 0xc7, 0x7e, 0xca, 0x1e, 0x9d, 0x36, 0xf3, 0x7f, 0xb2, 0xd4, 0x65,
    0x18, 0xc3, 0x66, 0x39,
];
const SALT_DRAFT_10: [u8; 20] = [
    0x9c, 0x10, 0x8f, 0x98, 0x52, 0x0a, 0x5c, 0x5c, 0x32, 0x96, 0x8e, 0x95, 0x0e, 0x8a, 0x2c, 0x5f,
    0xe0, 0x6d, 0x6c, 0x38,
];
const SALT_DRAFT_17: [u8; 20] = [
    0xef, 0x4f, 0xb0, 0xab, 0xb4, 0x74, 0x70, 0xc4, 0x1b, 0xef, 0xcf, 0x80, 0x31, 0x33, 0x4f, 0xae,
    0x48, 0x5e, 0x09, 0xa0,
];
const SALT_DRAFT_21: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2_DRAFT: [u8; 20] = [
    0xa7, 0x07, 0xc2, 0x03, 0xa5, 0x9b, 0x47, 0x18, 0x4a, 0x1d, 0x62, 0xca, 0x57, 0x04, 0x06, 0xea,
    0x7a, 0xe3, 0xe5, 0xd3,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_PICOQUIC: [u8; 20] = [
    0x30, 0x67, 0x16, 0xd7, 0x63, 0x75, 0xd5, 0x55, 0x4b, 0x2f, 0x60, 0x5e, 0xef, 0x78, 0xd8, 0x33,
    0x3d, 0xc1, 0xca, 0x36,
];

/// A connection id (at most 20 bytes), zero-padded like ipfixprobe's
/// buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cid {
    b: [u8; MAX_CID_LEN],
    len: u8,
}

impl Cid {
    fn from_packet(d: &[u8], off: usize, len: u8) -> Cid {
        let mut c = Cid {
            b: [0; MAX_CID_LEN],
            len,
        };
        for (i, x) in c.b.iter_mut().take(usize::from(len)).enumerate() {
            *x = byte(d, off.saturating_add(i));
        }
        c
    }

    pub fn as_slice(&self) -> &[u8] {
        self.b.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// C's `strncmp(a, b, n) == 0` over zero-padded buffers.
fn strn_eq(a: &[u8], b: &[u8], n: usize) -> bool {
    for i in 0..n {
        let (x, y) = (byte(a, i), byte(b, i));
        if x != y {
            return false;
        }
        if x == 0 {
            return true;
        }
    }
    true
}

/// The plugin's per-flow record.
#[derive(Clone, Debug)]
pub struct QuicExt {
    pub sni: Vec<u8>,
    pub user_agent: Vec<u8>,
    pub quic_version: u32,
    pub client_version: u32,
    pub token_length: u64,
    pub occid: Cid,
    pub oscid: Cid,
    pub scid: Cid,
    initial_dcid: Cid,
    pub retry_scid: Cid,
    dir_scid: Cid,
    dir_dcid: Cid,
    dir_scid2: Cid,
    dir_dcid2: Cid,
    dir_dport: u16,
    dir_dport2: u16,
    pub server_port: u16,
    cnt_retry_packets: u8,
    pub multiplexed: u8,
    pub zero_rtt: u8,
    pub pkt_types: [u8; MAX_ELEMS],
    pub last_pkt_type: u8,
    pub tls_ext_type: [u16; MAX_ELEMS],
    pub tls_ext_type_len: u16,
    tls_ext_type_set: bool,
    pub tls_ext_len: [u16; MAX_ELEMS],
    pub tls_ext_len_len: u8,
    tls_ext_len_set: bool,
    pub tls_ext: Vec<u8>,
    tls_ext_set: bool,
    pub parsed_ch: u8,
    occid_set: bool,
    oscid_set: bool,
    scid_set: bool,
    client_version_set: bool,
    client_hello_seen: bool,
    packet_from_server_seen: bool,
}

impl Default for QuicExt {
    fn default() -> QuicExt {
        QuicExt {
            sni: Vec::new(),
            user_agent: Vec::new(),
            quic_version: 0,
            client_version: 0,
            token_length: UNUSED_TOKEN_LEN,
            occid: Cid::default(),
            oscid: Cid::default(),
            scid: Cid::default(),
            initial_dcid: Cid::default(),
            retry_scid: Cid::default(),
            dir_scid: Cid::default(),
            dir_dcid: Cid::default(),
            dir_scid2: Cid::default(),
            dir_dcid2: Cid::default(),
            dir_dport: 0,
            dir_dport2: 0,
            server_port: 0,
            cnt_retry_packets: 0,
            multiplexed: 0,
            zero_rtt: 0,
            pkt_types: [0; MAX_ELEMS],
            last_pkt_type: 0,
            tls_ext_type: [0; MAX_ELEMS],
            tls_ext_type_len: 0,
            tls_ext_type_set: false,
            tls_ext_len: [0; MAX_ELEMS],
            tls_ext_len_len: 0,
            tls_ext_len_set: false,
            tls_ext: Vec::new(),
            tls_ext_set: false,
            parsed_ch: 0,
            occid_set: false,
            oscid_set: false,
            scid_set: false,
            client_version_set: false,
            client_hello_seen: false,
            packet_from_server_seen: false,
        }
    }
}

impl Extension for QuicExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(&self.sni));
        out.put(1, FieldValue::Str(&self.user_agent));
        out.put(2, FieldValue::U32(self.quic_version));
        out.put(3, FieldValue::U32(self.client_version));
        out.put(4, FieldValue::U64(self.token_length));
        out.put(5, FieldValue::Bytes(self.occid.as_slice()));
        out.put(6, FieldValue::Bytes(self.oscid.as_slice()));
        out.put(7, FieldValue::Bytes(self.scid.as_slice()));
        out.put(8, FieldValue::Bytes(self.retry_scid.as_slice()));
        out.put(9, FieldValue::U8(self.multiplexed));
        out.put(10, FieldValue::U8(self.zero_rtt));
        out.put(11, FieldValue::U16(self.server_port));
        let n = (usize::from(self.last_pkt_type) + 1).min(MAX_ELEMS);
        out.put(12, FieldValue::U8s(&self.pkt_types[..n]));
        out.put(13, FieldValue::U8(self.parsed_ch));
        let n = usize::from(self.tls_ext_type_len).min(MAX_ELEMS);
        out.put(14, FieldValue::U16s(&self.tls_ext_type[..n]));
        let n = usize::from(self.tls_ext_len_len).min(MAX_ELEMS);
        out.put(15, FieldValue::U16s(&self.tls_ext_len[..n]));
        out.put(16, FieldValue::Bytes(&self.tls_ext));
    }
}

/// QUIC's variable-length integer as ipfixprobe's QUIC parser reads it: an
/// offset at or past 1499 (or too close to 1500 for the length) reads 0 and
/// still advances; bytes past the data read as zero.
fn qvarint(d: &[u8], off: &mut u64) -> u64 {
    let o = *off;
    if o >= (BUF - 1) as u64 {
        *off = o.saturating_add(1);
        return 0;
    }
    let i = o as usize;
    let first = byte(d, i);
    let n: usize = 1 << (first >> 6);
    if n > 1 && o >= (BUF - n) as u64 {
        *off = o.saturating_add(n as u64);
        return 0;
    }
    let mut v = u64::from(first & 0x3f);
    for k in 1..n {
        v = (v << 8) | u64::from(byte(d, i + k));
    }
    *off = o + n as u64;
    v
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) -> bool {
    let mut info = [0u8; 64];
    let l = label.len() + 6;
    let Some(buf) = info.get_mut(..4 + l) else {
        return false;
    };
    buf[..2].copy_from_slice(&(out.len() as u16).to_be_bytes());
    buf[2] = l as u8;
    buf[3..9].copy_from_slice(b"tls13 ");
    buf[9..3 + l].copy_from_slice(label.as_bytes());
    buf[3 + l] = 0;
    prk.expand(buf, out).is_ok()
}

/// The state of one datagram's parse (ipfixprobe makes a fresh parser per
/// packet); its buffers are reused from packet to packet.
struct Parser {
    version: u32,
    is_v2: bool,
    salt: Option<&'static [u8; 20]>,
    first_byte: u8,
    dcid: Cid,
    scid: Cid,
    initial_dcid: Cid,
    packet_type: u8,
    packets: u8,
    token_length: u64,
    zero_rtt: u8,
    server_port: u16,
    /// The type of the last TLS handshake header the parser accepted.
    hs_type: Option<u8>,
    tls_hs_type: u8,
    parsed_initial: bool,
    parsed_client_hello: bool,
    payload_off: usize,
    payload_len: u64,
    payload_len_offset: u64,
    pkn_off: usize,
    pkn_len: u8,
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
    header: Vec<u8>,
    decrypted: Vec<u8>,
    assembled: Vec<u8>,
    crypto_start: u16,
    crypto_len: u16,
    hello: Hello,
    ext_types: [u16; MAX_ELEMS],
    ext_lens: [u16; MAX_ELEMS],
    ext_types_pos: u8,
    ext_lens_pos: u8,
    tls_ext: Vec<u8>,
    sni: Vec<u8>,
    user_agent: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser {
            version: 0,
            is_v2: false,
            salt: None,
            first_byte: 0,
            dcid: Cid::default(),
            scid: Cid::default(),
            initial_dcid: Cid::default(),
            packet_type: UNKNOWN,
            packets: 0,
            token_length: UNUSED_TOKEN_LEN,
            zero_rtt: 0,
            server_port: 0,
            hs_type: None,
            tls_hs_type: 0,
            parsed_initial: false,
            parsed_client_hello: false,
            payload_off: 0,
            payload_len: 0,
            payload_len_offset: 0,
            pkn_off: 0,
            pkn_len: 0,
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
            header: Vec::with_capacity(MAX_HEADER_LEN),
            decrypted: vec![0; BUF],
            assembled: vec![0; BUF],
            crypto_start: u16::MAX,
            crypto_len: 0,
            hello: Hello::default(),
            ext_types: [0; MAX_ELEMS],
            ext_lens: [0; MAX_ELEMS],
            ext_types_pos: 0,
            ext_lens_pos: 0,
            tls_ext: Vec::with_capacity(BUF),
            sni: Vec::new(),
            user_agent: Vec::new(),
        }
    }
}

impl Parser {
    /// Back to a fresh parser, keeping the buffers' memory.
    fn reset(&mut self) {
        self.version = 0;
        self.is_v2 = false;
        self.salt = None;
        self.first_byte = 0;
        self.dcid = Cid::default();
        self.scid = Cid::default();
        self.initial_dcid = Cid::default();
        self.packet_type = UNKNOWN;
        self.packets = 0;
        self.token_length = UNUSED_TOKEN_LEN;
        self.zero_rtt = 0;
        self.server_port = 0;
        self.hs_type = None;
        self.tls_hs_type = 0;
        self.parsed_initial = false;
        self.parsed_client_hello = false;
        self.payload_off = 0;
        self.payload_len = 0;
        self.payload_len_offset = 0;
        self.pkn_off = 0;
        self.pkn_len = 0;
        self.crypto_start = u16::MAX;
        self.crypto_len = 0;
        self.ext_types_pos = 0;
        self.ext_lens_pos = 0;
        self.tls_ext.clear();
        self.sni.clear();
        self.user_agent.clear();
    }

    /// ipfixprobe's "draft number" of a version (0 or 255: unknown); marks
    /// v2 versions.
    fn draft_version(&mut self, v: u32) -> u8 {
        let draft = (v & 0xff) as u8;
        if v >> 8 == 0xff0000 && (1..=34).contains(&draft) {
            return draft;
        }
        if v & 0x0F0F_0F0F == 0x0a0a_0a0a {
            return 35;
        }
        match v & 0xffff_fff0 {
            0xabcd_0000 => return 29,
            0xf0f0_f0f0 | 0xf0f0_f1f0 | 0x0700_7000 | 0xf0f0_f2f0 | 0x5c10_0000 => return 35,
            0xf123_f0c0 => return 14,
            _ => {}
        }
        match v & 0xffff_ff00 {
            0x4547_4700 => return draft,
            0x5147_4f00 | 0x91c1_7000 => return 35,
            _ => {}
        }
        match v {
            0 => 1,
            0xfaceb000 => 20,
            0xfaceb001 => 22,
            0xfaceb002 | 0xfaceb00d | 0xfaceb00f | 0xfaceb00e | 0xfaceb011 | 0xfaceb013
            | 0xfaceb010 | 0xfaceb012 => 27,
            1 => 35,
            0x5043_5130 | 0x5043_5131 => 36,
            0xff02_0000 | 0x709a_50c4 => {
                self.is_v2 = true;
                100
            }
            0x6b33_43cf => {
                self.is_v2 = true;
                101
            }
            _ => 255,
        }
    }

    fn check_version(&mut self, v: u32, max: u8) -> bool {
        let d = self.draft_version(v);
        d != 0 && d <= max
    }

    /// Takes the version and picks its salt; false when unsupported.
    fn obtain_version(&mut self, v: u32) -> bool {
        self.version = v;
        let v2 = self.is_v2;
        let salt: &'static [u8; 20] = if v == 0 {
            return true;
        } else if !v2 && v == 1 {
            &SALT_V1
        } else if !v2 && self.check_version(v, 9) {
            &SALT_DRAFT_7
        } else if !self.is_v2 && self.check_version(v, 16) {
            &SALT_DRAFT_10
        } else if !self.is_v2 && self.check_version(v, 20) {
            &SALT_DRAFT_17
        } else if !self.is_v2 && self.check_version(v, 22) {
            &SALT_DRAFT_21
        } else if !self.is_v2 && self.check_version(v, 28) {
            &SALT_DRAFT_23
        } else if !self.is_v2 && self.check_version(v, 32) {
            &SALT_DRAFT_29
        } else if !self.is_v2 && self.check_version(v, 35) {
            &SALT_V1
        } else if !self.is_v2 && self.check_version(v, 36) {
            &SALT_PICOQUIC
        } else if self.is_v2 && self.check_version(v, 100) {
            &SALT_V2_DRAFT
        } else if self.is_v2 && self.check_version(v, 101) {
            &SALT_V2
        } else {
            return false;
        };
        self.salt = Some(salt);
        true
    }

    fn parse_packet_type(&mut self, p0: u8) {
        if self.version == 0 {
            self.packets |= F_VERSION_NEGOTIATION;
            self.packet_type = VERSION_NEGOTIATION;
            return;
        }
        let t = (p0 & 0x30) >> 4;
        if self.is_v2 {
            let (ty, flag) = match t {
                1 => (INITIAL, F_INITIAL),
                2 => (ZERO_RTT, F_ZERO_RTT),
                3 => (HANDSHAKE, F_HANDSHAKE),
                _ => (RETRY, F_RETRY),
            };
            self.packet_type = ty;
            self.packets |= flag;
        } else {
            self.packet_type = t;
            self.packets |= [F_INITIAL, F_ZERO_RTT, F_HANDSHAKE, F_RETRY][usize::from(t & 3)];
        }
    }

    /// One long header at `*off`: version, connection ids, type.
    fn parse_header(&mut self, d: &[u8], off: &mut usize) -> bool {
        let len = d.len();
        if *off >= len {
            return false;
        }
        let fb = byte(d, *off);
        if fb & 0x80 == 0 {
            return false;
        }
        self.first_byte = fb;
        let v = u32::from_be_bytes([
            byte(d, *off + 1),
            byte(d, *off + 2),
            byte(d, *off + 3),
            byte(d, *off + 4),
        ]);
        if !self.obtain_version(v) {
            return false;
        }
        let dcid_len = byte(d, *off + 5);
        *off += 6;
        if *off >= len {
            return false;
        }
        if dcid_len != 0 {
            if usize::from(dcid_len) > MAX_CID_LEN {
                return false;
            }
            self.dcid = Cid::from_packet(d, *off, dcid_len);
            *off += usize::from(dcid_len);
        }
        if *off >= len {
            return false;
        }
        let scid_len = byte(d, *off);
        *off += 1;
        if *off >= len {
            return false;
        }
        if scid_len != 0 {
            if usize::from(scid_len) > MAX_CID_LEN {
                return false;
            }
            self.scid = Cid::from_packet(d, *off, scid_len);
            *off += usize::from(scid_len);
        }
        if *off >= len {
            return false;
        }
        self.parse_packet_type(fb);
        true
    }

    fn parse_initial_header(&mut self, d: &[u8], off: &mut u64) -> bool {
        let len = d.len() as u64;
        self.token_length = qvarint(d, off);
        if *off >= len {
            return false;
        }
        *off = off.saturating_add(self.token_length);
        if *off >= len {
            return false;
        }
        self.payload_len = qvarint(d, off);
        if self.payload_len > BUF as u64 || *off >= len {
            return false;
        }
        self.pkn_off = *off as usize;
        self.payload_off = *off as usize;
        *off + 4 < len
    }

    fn set_server_port(&mut self, pkt: &Packet) -> bool {
        let Some(hs) = self.hs_type else {
            return false;
        };
        match self.packet_type {
            INITIAL => {
                self.tls_hs_type = hs;
                if hs == 1 {
                    self.server_port = pkt.dst_port;
                } else if hs == 2 {
                    self.server_port = pkt.src_port;
                }
            }
            VERSION_NEGOTIATION | RETRY => self.server_port = pkt.src_port,
            ZERO_RTT => self.server_port = pkt.dst_port,
            _ => {}
        }
        true
    }

    fn create_initial_secrets(&mut self) -> bool {
        if self.initial_dcid.len == 0 {
            self.initial_dcid = self.dcid;
        }
        let Some(salt) = self.salt else {
            return false;
        };
        let (_, prk) = Hkdf::<Sha256>::extract(Some(salt), self.initial_dcid.as_slice());
        let mut client = [0u8; 32];
        if !expand_label(&prk, "client in", &mut client) {
            return false;
        }
        let Ok(secret) = Hkdf::<Sha256>::from_prk(&client) else {
            return false;
        };
        let (k, i, h) = if self.is_v2 {
            ("quicv2 key", "quicv2 iv", "quicv2 hp")
        } else {
            ("quic key", "quic iv", "quic hp")
        };
        expand_label(&secret, k, &mut self.key)
            && expand_label(&secret, i, &mut self.iv)
            && expand_label(&secret, h, &mut self.hp)
    }

    fn decrypt_initial_header(&mut self, d: &[u8]) -> bool {
        let mut sample = [0u8; 16];
        for (i, s) in sample.iter_mut().enumerate() {
            *s = byte(d, self.pkn_off + 4 + i);
        }
        let hp = Aes128::new(&self.hp.into());
        let mut block = sample.into();
        hp.encrypt_block(&mut block);
        let mask: [u8; 16] = block.into();
        let fb = self.first_byte ^ (mask[0] & 0x0f);
        self.pkn_len = (fb & 3) + 1;
        let pkn_len = usize::from(self.pkn_len);
        self.payload_off += pkn_len;
        self.payload_len = self.payload_len.wrapping_sub(pkn_len as u64);
        if self.payload_len > BUF as u64 {
            return false;
        }
        let header_len = self.payload_off;
        if header_len > MAX_HEADER_LEN {
            return false;
        }
        let Some(h) = d.get(..header_len) else {
            return false;
        };
        self.header.clear();
        self.header.extend_from_slice(h);
        if let Some(x) = self.header.first_mut() {
            *x = fb;
        }
        let mut pn: u32 = 0;
        for i in 0..pkn_len {
            let b = byte(d, self.pkn_off + i) ^ mask[1 + i];
            pn |= u32::from(b) << (8 * (pkn_len - 1 - i));
        }
        for i in 0..pkn_len {
            if let Some(x) = self.header.get_mut(header_len - 1 - i) {
                *x = (pn >> (8 * i)) as u8;
            }
        }
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&self.iv[4..]);
        let t = u64::from_be_bytes(tail) ^ u64::from(pn);
        self.iv[4..].copy_from_slice(&t.to_be_bytes());
        true
    }

    fn decrypt_payload(&mut self, d: &[u8]) -> bool {
        if self.payload_len <= 16 || self.payload_len > BUF as u64 {
            return false;
        }
        self.payload_len -= 16;
        self.payload_len_offset = 16;
        let n = self.payload_len as usize;
        let start = self.payload_off;
        let (Some(ct), Some(tag)) = (d.get(start..start + n), d.get(start + n..start + n + 16))
        else {
            return false;
        };
        let Some(buf) = self.decrypted.get_mut(..n) else {
            return false;
        };
        buf.copy_from_slice(ct);
        let aead = Aes128Gcm::new(&self.key.into());
        aead.decrypt_in_place_detached(
            (&self.iv).into(),
            &self.header,
            buf,
            aes_gcm::Tag::from_slice(tag),
        )
        .is_ok()
    }

    /// Copies the CRYPTO frames of the decrypted payload to their offsets in
    /// the reassembly buffer (ipfixprobe's limits and quirks).
    fn reassemble_frames(&mut self) -> bool {
        self.crypto_start = u16::MAX;
        self.crypto_len = 0;
        let d = &self.decrypted;
        let end = self.payload_len;
        if end > BUF as u64 {
            return false;
        }
        let mut off: u64 = 0;
        while off < end {
            match byte(d, off as usize) {
                0x06 => {
                    off += 1;
                    let frame_off = qvarint(d, &mut off) as u32;
                    let mut frame_len = qvarint(d, &mut off) as u32;
                    if end < off {
                        self.crypto_len = self.crypto_len.wrapping_add(frame_len as u16);
                        off = off.saturating_add(u64::from(frame_len));
                        continue;
                    }
                    let frame_off = frame_off.min((BUF - 1) as u32);
                    frame_len = frame_len.min((BUF - 1) as u32 - frame_off);
                    frame_len = frame_len.min((end - off) as u32);
                    let (fo, fl, src) = (frame_off as usize, frame_len as usize, off as usize);
                    if let (Some(to), Some(from)) =
                        (self.assembled.get_mut(fo..fo + fl), d.get(src..src + fl))
                    {
                        to.copy_from_slice(from);
                    }
                    if frame_off < u32::from(self.crypto_start) {
                        self.crypto_start = frame_off as u16;
                    }
                    self.crypto_len = self.crypto_len.wrapping_add(frame_len as u16);
                    off += u64::from(frame_len);
                }
                0x02 | 0x03 => {
                    let ecn = byte(d, off as usize) == 0x03;
                    off += 1;
                    qvarint(d, &mut off);
                    qvarint(d, &mut off);
                    let ranges = qvarint(d, &mut off);
                    qvarint(d, &mut off);
                    let mut x = 0;
                    while x < ranges && off < BUF as u64 {
                        qvarint(d, &mut off);
                        qvarint(d, &mut off);
                        x += 1;
                    }
                    if ecn {
                        qvarint(d, &mut off);
                        qvarint(d, &mut off);
                        qvarint(d, &mut off);
                    }
                }
                0x1c => {
                    off += 1;
                    qvarint(d, &mut off);
                    qvarint(d, &mut off);
                    let reason = qvarint(d, &mut off);
                    off = off.saturating_add(reason);
                }
                0x1d => {
                    off += 1;
                    qvarint(d, &mut off);
                    let reason = qvarint(d, &mut off);
                    off = off.saturating_add(reason);
                }
                0x00 | 0x01 => off += 1,
                _ => return false,
            }
        }
        self.crypto_start != u16::MAX
    }

    /// The ClientHello (or ServerHello) in the reassembled CRYPTO data.
    fn parse_tls(&mut self) -> bool {
        let start = usize::from(self.crypto_start).min(BUF);
        let end = (start + usize::from(self.crypto_len)).min(BUF);
        let d = self.assembled.get(start..end).unwrap_or_default();
        let h = &mut self.hello;
        let ok = h.parse(d, true);
        if h.handshake_type != 0 {
            self.hs_type = Some(h.handshake_type);
        }
        if !ok {
            return false;
        }
        h.user_agents.clear();
        let tls_ext = &mut self.tls_ext;
        let parsed = h.for_each_extension(d, |h, d, ty, off, l| {
            let tp = matches!(ty, EXT_QUIC_TP_V1 | EXT_QUIC_TP | EXT_QUIC_TP_V2);
            if ty == EXT_SERVER_NAME && l != 0 {
                h.parse_server_names(d, off, l);
            } else if tp && l != 0 {
                h.parse_quic_user_agent(d, off, l);
            }
            if tls_ext.len() + usize::from(l) < BUF && (ty == EXT_ALPN || tp) {
                for i in 0..usize::from(l) {
                    tls_ext.push(byte(d, off + i));
                }
            }
            h.extensions.push((ty, l));
        });
        if !parsed {
            return false;
        }
        if let Some(n) = saved_name(d, &h.server_names, STR_BUF) {
            self.sni.clear();
            self.sni.extend_from_slice(n);
        }
        if let Some(n) = saved_name(d, &h.user_agents, STR_BUF) {
            self.user_agent.clear();
            self.user_agent.extend_from_slice(n);
        }
        let n = h.extensions.len().min(MAX_ELEMS);
        for (i, &(t, l)) in h.extensions.iter().take(n).enumerate() {
            self.ext_types[i] = t;
            self.ext_lens[i] = l;
        }
        self.ext_types_pos = n as u8;
        self.ext_lens_pos = n as u8;
        true
    }

    fn parse_initial(&mut self, pkt: &Packet, d: &[u8]) -> bool {
        if !self.create_initial_secrets()
            || !self.decrypt_initial_header(d)
            || !self.decrypt_payload(d)
            || !self.reassemble_frames()
            || !self.parse_tls()
        {
            return false;
        }
        self.parsed_initial = true;
        if !self.set_server_port(pkt) {
            return false;
        }
        if self.tls_hs_type == 1 {
            self.parsed_client_hello = true;
        }
        true
    }

    /// The long-header packets of one datagram, coalesced ones included.
    fn parse_headers(&mut self, pkt: &Packet, d: &[u8]) -> bool {
        let len = d.len();
        let mut off = 0usize;
        while off.saturating_add(MIN_PACKET_LEN) <= len {
            let start = off;
            if !self.parse_header(d, &mut off) {
                break;
            }
            let mut o = off as u64;
            match self.packet_type {
                ZERO_RTT => {
                    self.payload_len = qvarint(d, &mut o);
                    self.zero_rtt = self.zero_rtt.saturating_add(1);
                    o = o.saturating_add(self.payload_len);
                }
                HANDSHAKE => {
                    self.payload_len = qvarint(d, &mut o);
                    if self.payload_len > BUF as u64 {
                        return false;
                    }
                    o = o.saturating_add(self.payload_len);
                }
                INITIAL => {
                    if !self.parse_initial_header(d, &mut o) {
                        return false;
                    }
                    let stored = self.payload_len;
                    if !self.parsed_initial {
                        // With the flow's initial DCID, then with this
                        // packet's (session resumption).
                        self.parse_initial(pkt, d);
                        if !self.parsed_initial {
                            self.ext_lens_pos = 0;
                            self.initial_dcid = Cid::default();
                            self.payload_len =
                                self.payload_len.wrapping_add(self.payload_len_offset);
                            self.payload_off =
                                self.payload_off.saturating_sub(usize::from(self.pkn_len));
                            self.payload_len =
                                self.payload_len.wrapping_add(u64::from(self.pkn_len));
                            self.parse_initial(pkt, d);
                        }
                    }
                    o = o.saturating_add(stored);
                }
                RETRY => {
                    // All but the 16-byte integrity tag (ipfixprobe counts
                    // from the packet's start twice for coalesced ones).
                    self.token_length = (len as u64)
                        .wrapping_sub(start as u64)
                        .wrapping_sub(o)
                        .wrapping_sub(16);
                    if o >= len as u64 {
                        return false;
                    }
                    o = o.wrapping_add(self.token_length);
                    if o >= len as u64 {
                        return false;
                    }
                }
                _ => {}
            }
            off = usize_of(o);
            if !self.set_server_port(pkt) {
                return false;
            }
            if self.packet_type == RETRY {
                break;
            }
        }
        if self.packets & F_INITIAL != 0 {
            self.packet_type = INITIAL;
        }
        self.packets != 0
    }

    /// ipfixprobe's check of a datagram: true when it is QUIC.
    fn check_long_header_packet(&mut self, pkt: &Packet, initial_dcid: Cid) -> bool {
        self.reset();
        self.initial_dcid = initial_dcid;
        let d = pkt.payload();
        let p0 = byte(d, 0);
        self.packets |= (p0 & 0x40) << 1;
        let v = u32::from_be_bytes([byte(d, 1), byte(d, 2), byte(d, 3), byte(d, 4)]);
        if pkt.protocol != 17 || p0 & 0x80 == 0 || d.len() < MIN_PACKET_LEN {
            return false;
        }
        let dv = self.draft_version(v);
        if dv == 0 || dv == 255 {
            return false;
        }
        self.decrypted.iter_mut().for_each(|b| *b = 0);
        self.assembled.iter_mut().for_each(|b| *b = 0);
        self.parse_headers(pkt, d)
    }
}

/// The `quic` plugin.
#[derive(Default)]
pub struct Quic {
    parser: Box<Parser>,
}

impl Quic {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::<Quic>::default())
    }

    fn add_quic(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.protocol != 17 {
            return Verdict::CONTINUE;
        }
        let p = &mut self.parser;
        match f.exts.get_mut::<QuicExt>() {
            Some(q) => {
                if process(p, q, f.flow, pkt, false) == Outcome::Flush {
                    return Verdict::FLUSH;
                }
                Verdict::CONTINUE
            }
            None => {
                let mut q = QuicExt::default();
                let r = process(p, &mut q, f.flow, pkt, true);
                if r != Outcome::NotQuic {
                    f.exts.add(q);
                }
                if r == Outcome::Flush {
                    return Verdict::FLUSH;
                }
                Verdict::CONTINUE
            }
        }
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Quic,
    NotQuic,
    Flush,
}

fn set_packet_type(q: &mut QuicExt, flow: &Flow, packets: u8) {
    let pos = flow.packets.wrapping_add(flow.packets_rev).wrapping_sub(1) as usize;
    if pos < MAX_ELEMS {
        q.pkt_types[pos] = packets;
        q.last_pkt_type = pos as u8;
    }
}

fn direction_to_server(parsed_port: u16, q: &QuicExt, pkt: &Packet, new: bool) -> i32 {
    if parsed_port != 0 {
        i32::from(pkt.dst_port == parsed_port)
    } else if !new && q.server_port != 0 {
        i32::from(pkt.dst_port == q.server_port)
    } else {
        -1
    }
}

fn direction_and_port(p: &Parser, q: &mut QuicExt, pkt: &Packet, new: bool) -> i32 {
    let to_server = direction_to_server(p.server_port, q, pkt, new);
    if to_server != -1 && q.server_port == 0 {
        q.server_port = p.server_port;
    }
    if to_server == 0 {
        q.packet_from_server_seen = true;
    }
    to_server
}

fn set_if_unset(flag: &mut bool, src: Cid, dst: &mut Cid) {
    if !*flag {
        *dst = src;
        *flag = true;
    }
}

/// Assigns the connection ids stored while the direction was unknown.
fn set_stored_cid_fields(q: &mut QuicExt, new: bool) {
    if new || q.server_port == 0 || q.dir_dport == 0 {
        return;
    }
    let stored = [
        (q.dir_dport, q.dir_scid, q.dir_dcid),
        (q.dir_dport2, q.dir_scid2, q.dir_dcid2),
    ];
    for (i, (dport, scid, dcid)) in stored.into_iter().enumerate() {
        if i == 1 && dport == 0 {
            break;
        }
        if dport == q.server_port {
            if q.client_hello_seen && q.packet_from_server_seen {
                set_if_unset(&mut q.scid_set, dcid, &mut q.scid);
            }
            set_if_unset(&mut q.occid_set, scid, &mut q.occid);
        } else {
            set_if_unset(&mut q.scid_set, scid, &mut q.scid);
            set_if_unset(&mut q.occid_set, dcid, &mut q.occid);
        }
        if i == 0 {
            q.dir_dport = 0;
        } else {
            q.dir_dport2 = 0;
        }
    }
}

fn set_cid_fields(
    p: &Parser,
    q: &mut QuicExt,
    flow: &Flow,
    to_server: i32,
    new: bool,
    pkt: &Packet,
) {
    let from_server = if p.server_port == flow.src_port {
        flow.packets as u8
    } else {
        flow.packets_rev as u8
    };
    match to_server {
        1 => {
            set_stored_cid_fields(q, new);
            if !q.scid_set
                && q.packet_from_server_seen
                && i32::from(from_server) - 1 != i32::from(q.cnt_retry_packets)
            {
                q.scid = p.dcid;
                q.scid_set = true;
            }
            set_if_unset(&mut q.occid_set, p.scid, &mut q.occid);
        }
        0 => {
            set_stored_cid_fields(q, new);
            set_if_unset(&mut q.occid_set, p.dcid, &mut q.occid);
            if !q.scid_set && q.packet_from_server_seen {
                q.scid = p.scid;
                q.scid_set = true;
            }
        }
        _ => {
            if q.dir_dport != 0 && q.dir_dport2 == 0 && q.dir_dport != pkt.dst_port {
                q.dir_scid2 = p.scid;
                q.dir_dcid2 = p.dcid;
                q.dir_dport2 = pkt.dst_port;
            }
            if q.dir_dport == 0 {
                q.dir_scid = p.scid;
                q.dir_dcid = p.dcid;
                q.dir_dport = pkt.dst_port;
            }
        }
    }
}

fn set_client_hello_fields(p: &Parser, q: &mut QuicExt, new: bool) {
    q.token_length = p.token_length;
    let dcid = p.dcid;
    let after_retry = q.token_length != UNUSED_TOKEN_LEN
        && q.token_length > 0
        && q.retry_scid.len == dcid.len
        && strn_eq(
            &q.retry_scid.b,
            &dcid.b,
            usize::from(q.retry_scid.len.min(dcid.len)),
        );
    if after_retry {
        // A ClientHello after a Retry: everything is known from the first.
        return;
    }
    let n = usize::from(dcid.len);
    let same_sni = q.sni == p.sni;
    let same_connection = strn_eq(&dcid.b, &q.oscid.b, n)
        || (q.packet_from_server_seen && dcid.len == q.scid.len && strn_eq(&dcid.b, &q.scid.b, n));
    if new || !q.client_hello_seen || (same_connection && same_sni) {
        q.server_port = p.server_port;
        q.sni.clone_from(&p.sni);
        q.user_agent.clone_from(&p.user_agent);
        set_if_unset(&mut q.oscid_set, p.dcid, &mut q.oscid);
        set_if_unset(&mut q.occid_set, p.scid, &mut q.occid);
        if !q.client_version_set {
            q.client_version = p.version;
            q.client_version_set = true;
        }
    } else {
        q.multiplexed = q.multiplexed.saturating_add(1);
    }
}

/// One packet of a flow (ipfixprobe's `process_quic`).
fn process(p: &mut Parser, q: &mut QuicExt, flow: &Flow, pkt: &Packet, new: bool) -> Outcome {
    if !p.check_long_header_packet(pkt, q.initial_dcid) {
        set_packet_type(q, flow, p.packets);
        return Outcome::NotQuic;
    }
    let version = p.version;
    let packets = p.packets;
    set_packet_type(q, flow, packets);
    if packets & F_ZERO_RTT == 0 {
        q.quic_version = version;
    }
    let mut to_server = direction_and_port(p, q, pkt, new);
    if packets & F_ZERO_RTT != 0 {
        q.zero_rtt = q.zero_rtt.saturating_add(p.zero_rtt);
    }
    if version == 0 {
        set_cid_fields(p, q, flow, to_server, new, pkt);
        return Outcome::Flush;
    }
    q.parsed_ch |= u8::from(p.parsed_client_hello);
    match p.packet_type {
        INITIAL => {
            if q.initial_dcid.len == 0 {
                q.initial_dcid = p.dcid;
            }
            if p.parsed_initial && p.tls_hs_type == 1 {
                set_stored_cid_fields(q, new);
                set_client_hello_fields(p, q, new);
                q.client_hello_seen = true;
                if !q.tls_ext_type_set {
                    let n = usize::from(p.ext_types_pos);
                    q.tls_ext_type[..n].copy_from_slice(&p.ext_types[..n]);
                    q.tls_ext_type_len = u16::from(p.ext_types_pos);
                    q.tls_ext_type_set = true;
                }
                if !q.tls_ext_len_set {
                    let n = usize::from(p.ext_lens_pos);
                    q.tls_ext_len[..n].copy_from_slice(&p.ext_lens[..n]);
                    q.tls_ext_len_len = p.ext_lens_pos;
                    q.tls_ext_len_set = true;
                }
                if !q.tls_ext_set {
                    q.tls_ext.clone_from(&p.tls_ext);
                    q.tls_ext_set = true;
                }
            } else {
                to_server = direction_and_port(p, q, pkt, new);
                set_cid_fields(p, q, flow, to_server, new, pkt);
            }
        }
        HANDSHAKE => set_cid_fields(p, q, flow, to_server, new, pkt),
        RETRY => {
            q.cnt_retry_packets = q.cnt_retry_packets.wrapping_add(1);
            if q.cnt_retry_packets == 1 {
                q.retry_scid = p.scid;
                // ipfixprobe takes the DCID's length with the SCID's bytes.
                q.initial_dcid = Cid {
                    b: p.scid.b,
                    len: p.dcid.len,
                };
                q.token_length = p.token_length;
            }
            set_if_unset(&mut q.occid_set, p.dcid, &mut q.occid);
        }
        ZERO_RTT => set_if_unset(&mut q.occid_set, p.scid, &mut q.occid),
        _ => {}
    }
    Outcome::Quic
}

const fn c(name: &'static str, t: unirec::FieldType, id: u16) -> FieldDef {
    FieldDef::new(
        name,
        t,
        Some(Ie {
            pen: PEN_CESNET,
            id,
        }),
    )
}
pub(crate) const FIELDS: &[FieldDef] = &[
    c("QUIC_SNI", ty::STRING, 890),
    c("QUIC_USER_AGENT", ty::STRING, 891),
    c("QUIC_VERSION", ty::U32, 892),
    c("QUIC_CLIENT_VERSION", ty::U32, 893),
    c("QUIC_TOKEN_LENGTH", ty::U64, 894),
    c("QUIC_OCCID", ty::BYTES, 895),
    c("QUIC_OSCID", ty::BYTES, 896),
    c("QUIC_SCID", ty::BYTES, 897),
    c("QUIC_RETRY_SCID", ty::BYTES, 898),
    c("QUIC_MULTIPLEXED", ty::U8, 899),
    c("QUIC_ZERO_RTT", ty::U8, 889),
    c("QUIC_SERVER_PORT", ty::U16, 887),
    // Basic lists in ipfixprobe's IPFIX export, of these elements.
    c("QUIC_PACKETS", ty::U8S, 888),
    c("QUIC_CH_PARSED", ty::U8, 886),
    c("QUIC_TLS_EXT_TYPE", ty::U16S, 885),
    c("QUIC_TLS_EXT_LEN", ty::U16S, 884),
    c("QUIC_TLS_EXT", ty::BYTES, 883),
];

impl ProcessPlugin for Quic {
    fn name(&self) -> &'static str {
        "quic"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.add_quic(f, pkt)
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.add_quic(f, pkt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::EndReason;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect()
    }

    fn flow(pkt: &Packet) -> Flow {
        Flow {
            ip_version: 4,
            src_ip: pkt.src_ip,
            dst_ip: pkt.dst_ip,
            src_port: pkt.src_port,
            dst_port: pkt.dst_port,
            protocol: 17,
            vlan_id: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            time_first: 0,
            time_last: 0,
            packets: 1,
            packets_rev: 0,
            bytes: 0,
            bytes_rev: 0,
            tcp_flags: 0,
            tcp_flags_rev: 0,
            end_reason: EndReason::Forced,
            flow_hash: 0,
        }
    }

    /// RFC 9001 appendix A.1: the client's initial keys.
    #[test]
    fn rfc9001_client_initial_keys() {
        let mut p = Parser::default();
        assert!(p.obtain_version(1));
        p.dcid = Cid::from_packet(&unhex("8394c8f03e515708"), 0, 8);
        assert!(p.create_initial_secrets());
        assert_eq!(p.key.to_vec(), unhex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(p.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(p.hp.to_vec(), unhex("9f50449e04a0e810283a1e9933adedd2"));
    }

    /// RFC 9001 appendix A.2: header protection removed.
    #[test]
    fn rfc9001_header_protection() {
        let mut d = unhex("c000000001088394c8f03e5157080000449e7b9aec34");
        d.extend_from_slice(&unhex("d1b1c98dd7689fb8ec11d242b123dc9b"));
        let mut p = Parser::default();
        assert!(p.obtain_version(1));
        p.dcid = Cid::from_packet(&unhex("8394c8f03e515708"), 0, 8);
        assert!(p.create_initial_secrets());
        p.first_byte = 0xc0;
        p.pkn_off = 18;
        p.payload_off = 18;
        p.payload_len = 0x49e;
        assert!(p.decrypt_initial_header(&d));
        assert_eq!(p.pkn_len, 4);
        assert_eq!(
            p.header,
            unhex("c300000001088394c8f03e5157080000449e00000002")
        );
        // The nonce: the IV with the packet number (2) XOR'ed in.
        assert_eq!(p.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255e"));
    }

    #[test]
    fn versions_and_salts() {
        let mut p = Parser::default();
        assert_eq!(p.draft_version(0xff00_001d), 29);
        assert!(p.obtain_version(0xff00_001d) && p.salt == Some(&SALT_DRAFT_29));
        assert!(p.obtain_version(0xfaceb002) && p.salt == Some(&SALT_DRAFT_23));
        assert!(p.obtain_version(0x5147_4f01) && p.salt == Some(&SALT_V1));
        assert!(!p.obtain_version(0x1234_5678));
        assert!(!p.is_v2);
        assert!(p.obtain_version(0x6b33_43cf) && p.is_v2 && p.salt == Some(&SALT_V2));
    }

    /// A ClientHello as QUIC carries it: SNI, ALPN h3, transport parameters
    /// with an idle timeout and Google's user agent.
    fn client_hello() -> Vec<u8> {
        let mut ext = Vec::new();
        let mut add = |t: u16, body: &[u8]| {
            ext.extend_from_slice(&t.to_be_bytes());
            ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
            ext.extend_from_slice(body);
        };
        add(0, b"\x00\x0e\x00\x00\x0bexample.com");
        add(16, b"\x00\x03\x02h3");
        add(0x39, b"\x01\x02\x67\x10\x80\x00\x31\x29\x04UA/1");
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        hs
    }

    /// A protected v1 client Initial carrying `crypto` in one CRYPTO frame.
    fn initial(dcid: &[u8], crypto: &[u8]) -> Vec<u8> {
        let mut p = Parser::default();
        assert!(p.obtain_version(1));
        p.dcid = Cid::from_packet(dcid, 0, dcid.len() as u8);
        assert!(p.create_initial_secrets());
        let mut plain = vec![
            0x06,
            0x00,
            0x40 | (crypto.len() >> 8) as u8,
            crypto.len() as u8,
        ];
        plain.extend_from_slice(crypto);
        plain.resize(plain.len() + 40, 0); // PADDING
        let pn = 0u8;
        let mut hdr = vec![0xc0, 0, 0, 0, 1, dcid.len() as u8];
        hdr.extend_from_slice(dcid);
        hdr.extend_from_slice(&[0, 0]); // no SCID, no token
        let len = plain.len() + 1 + 16;
        hdr.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
        hdr.push(pn);
        let aead = Aes128Gcm::new(&p.key.into());
        let tag = aead
            .encrypt_in_place_detached((&p.iv).into(), &hdr, &mut plain)
            .unwrap_or_default();
        let pn_off = hdr.len() - 1;
        let mut pkt = hdr;
        pkt.extend_from_slice(&plain);
        pkt.extend_from_slice(&tag);
        let mut block = [0u8; 16];
        block.copy_from_slice(&pkt[pn_off + 4..pn_off + 20]);
        let mut block = block.into();
        Aes128::new(&p.hp.into()).encrypt_block(&mut block);
        let mask: [u8; 16] = block.into();
        pkt[0] ^= mask[0] & 0x0f;
        pkt[pn_off] ^= mask[1];
        pkt
    }

    fn udp(payload: Vec<u8>) -> Packet {
        Packet {
            protocol: 17,
            src_port: 50000,
            dst_port: 443,
            payload_len: payload.len() as u16,
            payload,
            ..Packet::default()
        }
    }

    #[test]
    fn client_initial_gives_sni_user_agent_and_extensions() {
        let dcid = unhex("0102030405060708");
        let pkt = udp(initial(&dcid, &client_hello()));
        let fl = flow(&pkt);
        let mut p = Parser::default();
        let mut q = QuicExt::default();
        assert!(process(&mut p, &mut q, &fl, &pkt, true) == Outcome::Quic);
        assert_eq!(q.sni, b"example.com");
        assert_eq!(q.user_agent, b"UA/1");
        assert_eq!((q.quic_version, q.client_version), (1, 1));
        assert_eq!((q.server_port, q.parsed_ch, q.token_length), (443, 1, 0));
        assert_eq!(q.oscid.as_slice(), dcid);
        assert!(q.occid.as_slice().is_empty());
        assert_eq!(&q.pkt_types[..1], &[0x81]);
        assert_eq!(&q.tls_ext_type[..3], &[0, 16, 0x39]);
        assert_eq!(q.tls_ext_type_len, 3);
        assert_eq!(&q.tls_ext_len[..3], &[16, 5, 13]);
        let mut want = b"\x00\x03\x02h3".to_vec();
        want.extend_from_slice(b"\x01\x02\x67\x10\x80\x00\x31\x29\x04UA/1");
        assert_eq!(q.tls_ext, want);

        // A repeated Initial of the same connection is not multiplexing;
        // another SNI under another DCID is.
        let mut fl2 = fl.clone();
        fl2.packets = 2;
        assert!(process(&mut p, &mut q, &fl2, &pkt, false) == Outcome::Quic);
        assert_eq!(q.multiplexed, 0);
        let mut other = client_hello();
        if let Some(i) = other.windows(7).position(|w| w == b"example") {
            other[i] = b'E';
        }
        let pkt2 = udp(initial(&unhex("1112131415161718"), &other));
        fl2.packets = 3;
        q.initial_dcid = Cid::default();
        assert!(process(&mut p, &mut q, &fl2, &pkt2, false) == Outcome::Quic);
        assert_eq!(q.multiplexed, 1);
        assert_eq!(&q.pkt_types[..3], &[0x81, 0x81, 0x81]);
    }

    #[test]
    fn broken_initials_are_not_quic_and_do_not_panic() {
        let dcid = unhex("0102030405060708");
        let good = initial(&dcid, &client_hello());
        let mut p = Parser::default();
        for n in 0..good.len() {
            let pkt = udp(good[..n].to_vec());
            let mut q = QuicExt::default();
            let r = process(&mut p, &mut q, &flow(&pkt), &pkt, true);
            // Cut inside the long header (ends at 15): ipfixprobe stops
            // parsing yet counts the datagram as QUIC by its QUIC bit.
            if (8..=15).contains(&n) {
                assert!(r == Outcome::Quic && q.pkt_types[0] == 0x80, "{n}");
                assert!(q.sni.is_empty() && q.parsed_ch == 0);
            } else {
                assert!(r == Outcome::NotQuic, "{n}");
            }
        }
        let mut bad = good.clone();
        if let Some(b) = bad.last_mut() {
            *b ^= 1; // the tag
        }
        let pkt = udp(bad);
        let mut q = QuicExt::default();
        assert!(process(&mut p, &mut q, &flow(&pkt), &pkt, true) == Outcome::NotQuic);
        // Random long-header junk of known versions.
        let mut junk = vec![0xc0u8, 0xff, 0, 0, 0x1d, 20];
        junk.resize(1400, 0xc3);
        for cut in [7, 30, 60, 400, 1400] {
            let pkt = udp(junk[..cut].to_vec());
            let mut q = QuicExt::default();
            process(&mut p, &mut q, &flow(&pkt), &pkt, true);
        }
    }

    #[test]
    fn varints_follow_ipfixprobes_buffer_limits() {
        let mut d = vec![0u8; BUF];
        d[0] = 0x40;
        d[1] = 0x10;
        let mut o = 0;
        assert_eq!((qvarint(&d, &mut o), o), (0x10, 2));
        let mut o = 1499;
        assert_eq!((qvarint(&d, &mut o), o), (0, 1500));
        d[1498] = 0x40;
        let mut o = 1498;
        assert_eq!((qvarint(&d, &mut o), o), (0, 1500));
    }
}
