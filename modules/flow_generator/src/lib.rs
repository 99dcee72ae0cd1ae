//! flow_generator: synthetic flow-like records for benchmarks and tests,
//! deterministic for a given seed.

use unirec::{RecordBuilder, RecordError, Template, UrIp, UrTime};

/// The benchmark template (the one the C NEMEA reference numbers use).
pub const SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

/// [`SPEC`] with ipfixprobe's `TCP_FLAGS`, the input of the TCP detectors
/// (vportscan, haddrscan, bruteforce, miner, hoststats).
pub const SPEC_TCP_FLAGS: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint8 TCP_FLAGS";

/// TCP flag sets of the generated TCP flows: mostly complete sessions
/// (SYN+ACK+PSH+FIN, ACK+PSH, ACK), with some SYN-only probes and resets.
const TCP_FLAG_MIX: [u8; 8] = [0x1b, 0x1b, 0x1b, 0x18, 0x18, 0x10, 0x02, 0x16];

/// Produces records one after another.
pub struct FlowGen<'t> {
    builder: RecordBuilder<'t>,
    fields: [usize; 9],
    /// Where TCP_FLAGS goes, when the template has it.
    tcp_flags: Option<usize>,
    state: u64,
    time: u64,
}

impl<'t> FlowGen<'t> {
    /// `t` must contain the fields of [`SPEC`]; `TCP_FLAGS` is filled when
    /// it has that field too.
    pub fn new(t: &'t Template, seed: u64) -> Result<FlowGen<'t>, RecordError> {
        let mut fields = [0; 9];
        for (slot, name) in fields.iter_mut().zip([
            "SRC_IP",
            "DST_IP",
            "SRC_PORT",
            "DST_PORT",
            "PROTOCOL",
            "PACKETS",
            "BYTES",
            "TIME_FIRST",
            "TIME_LAST",
        ]) {
            *slot = t.find(name).ok_or(RecordError::NoField(usize::MAX))?;
        }
        Ok(FlowGen {
            builder: RecordBuilder::new(t),
            fields,
            tcp_flags: t.find("TCP_FLAGS"),
            state: seed | 1,
            time: 1_700_000_000_000_000,
        })
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast and good enough for varied test data.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Appends the next record to `out`.
    pub fn next_record(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let r = self.next_u64();
        let r2 = self.next_u64();
        self.time += r2 % 1000;
        let [src, dst, sp, dp, proto, pk, by, tf, tl] = self.fields;
        let b = &mut self.builder;
        if r & 7 == 0 {
            let mut v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            v6[8..].copy_from_slice(&r2.to_be_bytes());
            b.set_ip(src, UrIp(v6))?;
            v6[15] ^= 0xff;
            b.set_ip(dst, UrIp(v6))?;
        } else {
            b.set_ip(
                src,
                UrIp::from_v4(std::net::Ipv4Addr::from(
                    0x0a00_0000 | (r as u32 & 0x00ff_ffff),
                )),
            )?;
            b.set_ip(
                dst,
                UrIp::from_v4(std::net::Ipv4Addr::from(
                    0xc0a8_0000 | ((r >> 24) as u32 & 0xffff),
                )),
            )?;
        }
        b.set_u16(sp, 1024 + (r >> 40) as u16 % 60_000)?;
        b.set_u16(dp, [53, 80, 443, 22, 123][(r >> 56) as usize % 5])?;
        let tcp = r & 16 == 0;
        b.set_u8(proto, if tcp { 6 } else { 17 })?;
        let packets = 1 + (r2 >> 32) as u32 % 200;
        if let Some(flags) = self.tcp_flags {
            let set = if tcp {
                TCP_FLAG_MIX[(r2 >> 8) as usize % TCP_FLAG_MIX.len()]
            } else {
                0
            };
            b.set_u8(flags, set)?;
        }
        b.set_u32(pk, packets)?;
        b.set_u64(by, u64::from(packets) * (40 + (r2 >> 48) % 1400))?;
        let first = self.time;
        let last = first + (r2 >> 20) % 30_000_000;
        let ts =
            |us: u64| UrTime::from_secs_micros((us / 1_000_000) as u32, (us % 1_000_000) as u32);
        b.set_time(tf, ts(first))?;
        b.set_time(tl, ts(last))?;
        b.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let t = Template::parse(SPEC).unwrap();
        let (mut a, mut b) = (FlowGen::new(&t, 7).unwrap(), FlowGen::new(&t, 7).unwrap());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            a.next_record(&mut x).unwrap();
            b.next_record(&mut y).unwrap();
        }
        assert_eq!(x, y);
        assert_eq!(x.len(), 100 * t.fixed_size());
        for rec in x.chunks_exact(t.fixed_size()) {
            let r = unirec::RecordRef::new_checked(&t, rec).unwrap();
            assert!(r.get_u32(t.find("PACKETS").unwrap()).unwrap() >= 1);
        }
    }

    #[test]
    fn tcp_flags_only_on_tcp_and_same_flows_otherwise() {
        let plain = Template::parse(SPEC).unwrap();
        let flagged = Template::parse(SPEC_TCP_FLAGS).unwrap();
        let (mut a, mut b) = (
            FlowGen::new(&plain, 3).unwrap(),
            FlowGen::new(&flagged, 3).unwrap(),
        );
        let (proto, flags) = (
            flagged.find("PROTOCOL").unwrap(),
            flagged.find("TCP_FLAGS").unwrap(),
        );
        let mut syn_only = 0;
        for _ in 0..1000 {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            a.next_record(&mut x).unwrap();
            b.next_record(&mut y).unwrap();
            let rx = unirec::RecordRef::new_checked(&plain, &x).unwrap();
            let ry = unirec::RecordRef::new_checked(&flagged, &y).unwrap();
            for name in ["SRC_IP", "DST_PORT", "PACKETS", "TIME_LAST"] {
                assert_eq!(
                    rx.raw(plain.find(name).unwrap()),
                    ry.raw(flagged.find(name).unwrap())
                );
            }
            let f = ry.get_u8(flags).unwrap();
            match ry.get_u8(proto).unwrap() {
                6 => assert!(TCP_FLAG_MIX.contains(&f)),
                _ => assert_eq!(f, 0),
            }
            syn_only += usize::from(f == 0x02);
        }
        assert!(syn_only > 10, "{syn_only}");
    }
}
