//! `ntp`: the header of NTP packets (port 123), one record per packet.
//!
//! Exports `NTP_LEAP`, `NTP_VERSION`, `NTP_MODE`, `NTP_STRATUM`,
//! `NTP_POLL`, `NTP_PRECISION`, `NTP_DELAY`, `NTP_DISPERSION`, `NTP_REF_ID`
//! and the four timestamps `NTP_REF`, `NTP_ORIG`, `NTP_RECV`, `NTP_SENT`.
//!
//! ipfixprobe's rules (an experimental plugin there), kept here:
//! * only a flow's first packet is looked at, when either port is 123, and
//!   the flow is then always flushed (so one record per NTP packet);
//! * accepted: version 4, mode 3 or 4, stratum ≤ 16, poll ≤ 17; bytes past
//!   the payload read as zero (only an empty payload is refused);
//! * `NTP_REF_ID` is the 4 bytes in dotted decimal, shown as `INIT`,
//!   `STEP`, `DENY` or `RATE` for those kiss codes at stratum 0;
//! * a timestamp is `seconds.micro` where, as in ipfixprobe, the 32-bit
//!   seconds and fraction are read by joining each byte's hex digits
//!   *without zero padding* (so a byte below 0x10 shifts the rest), and the
//!   fraction is printed with 6 decimals (rounded half to even; a fraction
//!   rounding up to 1 shows as `.000000`, seconds unchanged);
//! * `NTP_DELAY` and `NTP_DISPERSION` are never read: always 9 (the value
//!   ipfixprobe's record starts with).

use super::dns_wire::push_num;
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// One NTP header.
pub struct NtpExt {
    leap: u8,
    version: u8,
    mode: u8,
    stratum: u8,
    poll: u8,
    precision: u8,
    ref_id: Vec<u8>,
    /// Reference, origin, receive and transmit timestamps as text.
    times: [Vec<u8>; 4],
}

impl Extension for NtpExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U8(self.leap));
        out.put(1, FieldValue::U8(self.version));
        out.put(2, FieldValue::U8(self.mode));
        out.put(3, FieldValue::U8(self.stratum));
        out.put(4, FieldValue::U8(self.poll));
        out.put(5, FieldValue::U8(self.precision));
        out.put(6, FieldValue::U32(9));
        out.put(7, FieldValue::U32(9));
        out.put(8, FieldValue::Str(&self.ref_id));
        for (i, t) in self.times.iter().enumerate() {
            out.put(9 + i, FieldValue::Str(t));
        }
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("NTP_LEAP", ty::U8, ie(18)),
    FieldDef::new("NTP_VERSION", ty::U8, ie(19)),
    FieldDef::new("NTP_MODE", ty::U8, ie(20)),
    FieldDef::new("NTP_STRATUM", ty::U8, ie(21)),
    FieldDef::new("NTP_POLL", ty::U8, ie(22)),
    FieldDef::new("NTP_PRECISION", ty::U8, ie(23)),
    FieldDef::new("NTP_DELAY", ty::U32, ie(24)),
    FieldDef::new("NTP_DISPERSION", ty::U32, ie(25)),
    FieldDef::new("NTP_REF_ID", ty::STRING, ie(26)),
    FieldDef::new("NTP_REF", ty::STRING, ie(27)),
    FieldDef::new("NTP_ORIG", ty::STRING, ie(28)),
    FieldDef::new("NTP_RECV", ty::STRING, ie(29)),
    FieldDef::new("NTP_SENT", ty::STRING, ie(30)),
];

/// The `ntp` plugin.
pub struct Ntp;

/// ipfixprobe's reading of 4 bytes: their unpadded hex digits joined.
fn unpadded_hex(b: &[u8; 4]) -> u32 {
    let mut v: u64 = 0;
    for &x in b {
        v = if x < 0x10 { v << 4 } else { v << 8 } | u64::from(x);
    }
    // At most 8 hex digits: fits.
    v as u32
}

/// Appends a timestamp as ipfixprobe prints it.
fn write_timestamp(b: &[u8; 8], out: &mut Vec<u8>) {
    let secs = unpadded_hex(&[b[0], b[1], b[2], b[3]]);
    let frac = unpadded_hex(&[b[4], b[5], b[6], b[7]]);
    // frac / 2^32 with 6 decimals, half to even (as printf does).
    let q = u64::from(frac) * 1_000_000;
    let mut micros = q >> 32;
    let rem = q & 0xffff_ffff;
    if rem > 0x8000_0000 || (rem == 0x8000_0000 && micros & 1 == 1) {
        micros += 1;
    }
    push_num(out, u64::from(secs));
    out.push(b'.');
    let digits = micros % 1_000_000;
    let start = out.len();
    push_num(out, digits);
    let pad = 6 - (out.len() - start);
    for _ in 0..pad {
        out.insert(start, b'0');
    }
}

impl Ntp {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Ntp))
    }

    /// The header of one payload.
    pub fn parse(d: &[u8]) -> Option<NtpExt> {
        if d.is_empty() {
            return None;
        }
        let mut b = [0u8; 48];
        for (x, y) in b.iter_mut().zip(d) {
            *x = *y;
        }
        let ext_leap = b[0] >> 6;
        let version = (b[0] >> 3) & 7;
        let mode = b[0] & 7;
        if version != 4 || !(3..=4).contains(&mode) || b[1] > 16 || b[2] > 17 {
            return None;
        }
        let mut ref_id = Vec::with_capacity(15);
        for (i, x) in b[12..16].iter().enumerate() {
            if i > 0 {
                ref_id.push(b'.');
            }
            push_num(&mut ref_id, u64::from(*x));
        }
        if b[1] == 0 {
            for code in [&b"INIT"[..], b"STEP", b"DENY", b"RATE"] {
                if b[12..16] == *code {
                    ref_id = code.to_vec();
                }
            }
        }
        let mut times: [Vec<u8>; 4] = Default::default();
        for (i, t) in times.iter_mut().enumerate() {
            let o = 16 + 8 * i;
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&b[o..o + 8]);
            write_timestamp(&ts, t);
        }
        Some(NtpExt {
            leap: ext_leap,
            version,
            mode,
            stratum: b[1],
            poll: b[2],
            precision: b[3],
            ref_id,
            times,
        })
    }
}

impl ProcessPlugin for Ntp {
    fn name(&self) -> &'static str {
        "ntp"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.src_port != 123 && pkt.dst_port != 123 {
            return Verdict::CONTINUE;
        }
        if let Some(ext) = Ntp::parse(pkt.payload()) {
            f.exts.add(ext);
        }
        Verdict::FLUSH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_packet() {
        let mut p = vec![0x23, 2, 4, 0xec, 0, 0, 0, 0, 0, 0, 0, 0, 195, 113, 144, 238];
        // reference: da b3 2e c4 . 0e 87 ab 40 (a byte below 0x10: the quirk)
        p.extend_from_slice(&[0xda, 0xb3, 0x2e, 0xc4, 0x0e, 0x87, 0xab, 0x40]);
        p.extend_from_slice(&[0; 24]);
        let e = Ntp::parse(&p).expect("parses");
        assert_eq!(
            (e.leap, e.version, e.mode, e.stratum, e.poll),
            (0, 4, 3, 2, 4)
        );
        assert_eq!(e.precision, 0xec);
        assert_eq!(e.ref_id, b"195.113.144.238");
        // Read as 0xdab32ec4 . 0xe87ab40 (not 0x0e87ab40).
        assert_eq!(e.times[0], b"3669176004.056758");
        assert_eq!(e.times[1], b"0.000000");
    }

    #[test]
    fn refusals_and_kiss_codes() {
        assert!(Ntp::parse(&[]).is_none());
        assert!(Ntp::parse(&[0x1b]).is_none()); // version 3
        assert_eq!(
            Ntp::parse(&[0x23]).map(|e| e.ref_id),
            Some(b"0.0.0.0".to_vec())
        );
        assert!(Ntp::parse(&[0x24, 17]).is_none());
        assert!(Ntp::parse(&[0x24, 1, 18]).is_none());
        assert!(Ntp::parse(&[0x25]).is_none());
        let mut p = vec![0x24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"RATE");
        assert_eq!(Ntp::parse(&p).map(|e| e.ref_id), Some(b"RATE".to_vec()));
    }

    #[test]
    fn fraction_rounding() {
        let t = |b: [u8; 8]| {
            let mut o = Vec::new();
            write_timestamp(&b, &mut o);
            String::from_utf8(o).unwrap_or_default()
        };
        assert_eq!(t([0x10, 0, 0, 0, 0x80, 0x10, 0x10, 0x10]), "65536.500245");
        // Rounds up to 1.000000: ipfixprobe shows the decimals only.
        assert_eq!(t([0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), "65536.000000");
    }
}
