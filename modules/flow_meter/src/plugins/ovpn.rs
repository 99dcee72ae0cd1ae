//! `ovpn`: OpenVPN detection.
//!
//! Exports `uint8 OVPN_CONF_LEVEL` (0–100).
//!
//! ipfixprobe's rules: every packet's OpenVPN opcode (payload byte 0 for
//! UDP, byte 2 for TCP, `>> 3`; 0 for other protocols) drives a state
//! machine: hard reset from the client → hard reset from the server → ACK
//! from the client → control packet from the client with a TLS ClientHello
//! → control packet from the server with a ServerHello → control/ACK →
//! data. Four packets in a row that make no transition reset it. Packets
//! with more than 500 payload bytes (by the headers) that do not look like
//! RTP over UDP are "large"; large data packets are counted too. At export:
//! flows of at most 5 packets lose the extension; a flow of more than 20
//! packets in the data state gets 100; else, with more than 20 large
//! packets and a data share ≥ 0.6 (single-precision 0.6, compared in double
//! as in C), `share × 80` truncated. Difference: a TCP packet with exactly 2
//! payload bytes has no opcode byte; ipfixprobe reads past the payload
//! there, we take opcode 0.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// The plugin (no options).
pub struct Ovpn;

const NULL: u8 = 0;
const RESET_CLIENT: u8 = 1;
const RESET_SERVER: u8 = 2;
const ACK: u8 = 3;
const CLIENT_HELLO: u8 = 4;
const SERVER_HELLO: u8 = 5;
const CONTROL_ACK: u8 = 6;
const DATA: u8 = 7;

/// Packets without a transition before the state is reset.
const INVALID_LIMIT: i32 = 4;
/// "Large" packets have more payload bytes than this.
const LARGE: u16 = 500;
const MIN_PACKETS: u64 = 20;

#[derive(Clone, Copy, Default)]
struct OvpnExt {
    level: u8,
    large: u32,
    data: u32,
    invalid: i32,
    status: u8,
    client_ip: [u8; 16],
}

impl Extension for OvpnExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U8(self.level));
    }
}

fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// A TLS handshake record of type `hs` at `off + a` (record) / `off + b`
/// (handshake type), with the payload longer than `off + b`.
fn tls_at(p: &[u8], off: usize, a: usize, b: usize, hs: u8) -> bool {
    p.len() > off + b && at(p, off + a) == 0x16 && at(p, off + b) == hs
}

fn client_hello(p: &[u8], off: usize) -> bool {
    tls_at(p, off, 14, 19, 1) || tls_at(p, off, 42, 47, 1)
}

fn server_hello(p: &[u8], off: usize) -> bool {
    tls_at(p, off, 26, 31, 2) || tls_at(p, off, 54, 59, 2)
}

/// A UDP payload that looks like RTP (version 2, payload type not in the
/// RTCP range 72–95).
fn rtp_like(pkt: &Packet) -> bool {
    let p = pkt.payload();
    pkt.protocol == 17
        && p.len() >= 12
        && at(p, 0) >> 6 == 2
        && !(72..=95).contains(&(at(p, 1) & 0x7f))
}

impl OvpnExt {
    fn no_transition(&mut self) {
        self.invalid = self.invalid.wrapping_add(1);
        if self.invalid == INVALID_LIMIT {
            self.status = NULL;
        }
    }

    fn moved(&mut self, status: u8) {
        self.status = status;
        self.invalid = -1;
    }

    fn update(&mut self, pkt: &Packet) {
        let p = pkt.payload();
        let (opcode, off) = match pkt.protocol {
            17 => {
                if p.is_empty() {
                    return;
                }
                (at(p, 0) >> 3, 0)
            }
            6 => {
                if p.len() < 2 {
                    return;
                }
                (at(p, 2) >> 3, 2)
            }
            _ => (0, 0),
        };
        let large = pkt.payload_len_wire > LARGE && !rtp_like(pkt);
        match opcode {
            1 | 7 | 10 => {
                self.status = RESET_CLIENT;
                self.invalid = -1;
                self.client_ip = pkt.src_ip;
            }
            2 | 8 => {
                if self.status == RESET_CLIENT && self.client_ip == pkt.dst_ip {
                    self.moved(RESET_SERVER);
                } else {
                    self.no_transition();
                }
            }
            4 => {
                if self.status == ACK && self.client_ip == pkt.src_ip && client_hello(p, off) {
                    self.moved(CLIENT_HELLO);
                } else if self.status == CLIENT_HELLO
                    && self.client_ip == pkt.dst_ip
                    && server_hello(p, off)
                {
                    self.moved(SERVER_HELLO);
                } else if matches!(self.status, SERVER_HELLO | CONTROL_ACK) {
                    self.moved(CONTROL_ACK);
                } else {
                    self.no_transition();
                }
            }
            5 => {
                if self.status == RESET_SERVER && self.client_ip == pkt.src_ip {
                    self.moved(ACK);
                } else if matches!(self.status, SERVER_HELLO | CONTROL_ACK) {
                    self.moved(CONTROL_ACK);
                }
            }
            6 | 9 => {
                if matches!(self.status, CONTROL_ACK | DATA) {
                    self.moved(DATA);
                }
                if large {
                    self.data = self.data.wrapping_add(1);
                }
            }
            _ => {}
        }
        if large {
            self.large = self.large.wrapping_add(1);
        }
        if self.invalid >= INVALID_LIMIT {
            self.status = NULL;
            self.invalid = -1;
        }
        self.invalid = self.invalid.wrapping_add(1);
    }

    fn finish(&mut self, packets: u64) {
        if packets > MIN_PACKETS && self.status == DATA {
            self.level = 100;
        } else if u64::from(self.large) > MIN_PACKETS {
            let share = f64::from(self.data) / f64::from(self.large);
            if share >= f64::from(0.6f32) {
                self.level = (share * 80.0) as u8;
            }
        }
    }
}

impl Ovpn {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Ovpn))
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[FieldDef::new(
    "OVPN_CONF_LEVEL",
    ty::U8,
    Some(Ie {
        pen: PEN_CESNET,
        id: 828,
    }),
)];

impl ProcessPlugin for Ovpn {
    fn name(&self) -> &'static str {
        "ovpn"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = OvpnExt::default();
        e.update(pkt);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<OvpnExt>() {
            e.update(pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let packets = u64::from(f.flow.packets) + u64::from(f.flow.packets_rev);
        if packets <= 5 {
            f.exts.remove::<OvpnExt>();
        } else if let Some(e) = f.exts.get_mut::<OvpnExt>() {
            e.finish(packets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [u8; 16] = [1; 16];
    const S: [u8; 16] = [2; 16];

    fn udp(from_client: bool, payload: Vec<u8>) -> Packet {
        let (src_ip, dst_ip) = if from_client { (C, S) } else { (S, C) };
        Packet {
            protocol: 17,
            src_ip,
            dst_ip,
            payload_len: payload.len() as u16,
            payload_len_wire: payload.len() as u16,
            payload,
            ..Packet::default()
        }
    }

    fn op(code: u8, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[0] = code << 3;
        v
    }

    #[test]
    fn handshake_then_data() {
        let mut e = OvpnExt::default();
        e.update(&udp(true, op(7, 20)));
        assert_eq!(e.status, RESET_CLIENT);
        e.update(&udp(false, op(8, 20)));
        assert_eq!(e.status, RESET_SERVER);
        e.update(&udp(true, op(5, 20)));
        assert_eq!(e.status, ACK);
        let mut ch = op(4, 60);
        ch[14] = 0x16;
        ch[19] = 1;
        e.update(&udp(true, ch));
        assert_eq!(e.status, CLIENT_HELLO);
        let mut sh = op(4, 60);
        sh[26] = 0x16;
        sh[31] = 2;
        e.update(&udp(false, sh));
        assert_eq!(e.status, SERVER_HELLO);
        e.update(&udp(true, op(5, 20)));
        assert_eq!(e.status, CONTROL_ACK);
        for _ in 0..30 {
            e.update(&udp(true, op(9, 600)));
        }
        assert_eq!(e.status, DATA);
        assert_eq!((e.large, e.data), (30, 30));
        e.finish(36);
        assert_eq!(e.level, 100);
    }

    #[test]
    fn share_of_large_data_packets() {
        let mut e = OvpnExt::default();
        for i in 0..30 {
            e.update(&udp(true, op(if i < 21 { 6 } else { 0 }, 600)));
        }
        assert_eq!((e.large, e.data), (30, 21));
        e.finish(30);
        assert_eq!(e.level, 56);
    }

    #[test]
    fn short_payloads_do_not_panic() {
        let mut e = OvpnExt::default();
        for len in 0..70 {
            e.update(&udp(true, vec![0x20; len]));
            let mut t = udp(false, vec![0x20; len]);
            t.protocol = 6;
            e.update(&t);
        }
    }
}
