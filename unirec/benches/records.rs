//! Record encode / decode / text benchmark: prints records per second.
//! Run with `cargo bench -p unirec`.
use std::hint::black_box;
use std::time::Instant;
use unirec::text::write_record;
use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

const N: u32 = 1_000_000;
const SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

fn report(what: &str, n: u32, start: Instant) {
    let s = start.elapsed().as_secs_f64();
    println!(
        "{what:<28} {n} records in {s:.3} s = {:.2} M records/s",
        f64::from(n) / s / 1e6
    );
}

fn main() {
    let t = Template::parse(SPEC).expect("template");
    let idx = |n| t.find(n).expect("field");
    let (src, dst, sp, dp, proto, pk, by, tf, tl) = (
        idx("SRC_IP"),
        idx("DST_IP"),
        idx("SRC_PORT"),
        idx("DST_PORT"),
        idx("PROTOCOL"),
        idx("PACKETS"),
        idx("BYTES"),
        idx("TIME_FIRST"),
        idx("TIME_LAST"),
    );
    let mut b = RecordBuilder::new(&t);
    let mut buf = Vec::with_capacity(N as usize * t.fixed_size());
    let start = Instant::now();
    for i in 0..N {
        b.set_ip(src, UrIp::from_v4((0x0a00_0000 | i).into()))
            .unwrap();
        b.set_ip(dst, UrIp::from_v4((0xc0a8_0000 | (i & 0xffff)).into()))
            .unwrap();
        b.set_u16(sp, (i % 60_000) as u16 + 1024).unwrap();
        b.set_u16(dp, 443).unwrap();
        b.set_u8(proto, 6).unwrap();
        b.set_u32(pk, i % 100 + 1).unwrap();
        b.set_u64(by, u64::from(i) * 40).unwrap();
        b.set_time(
            tf,
            UrTime::from_secs_micros(1_700_000_000 + i / 1000, i % 1_000_000),
        )
        .unwrap();
        b.set_time(
            tl,
            UrTime::from_secs_micros(1_700_000_001 + i / 1000, i % 1_000_000),
        )
        .unwrap();
        b.finish(&mut buf).unwrap();
    }
    report("encode (builder)", N, start);

    let size = t.fixed_size();
    let start = Instant::now();
    let mut sum = 0u64;
    for rec in buf.chunks_exact(size) {
        let r = RecordRef::new_checked(&t, rec).unwrap();
        sum = sum.wrapping_add(r.get_u64(by).unwrap_or(0)) ^ u64::from(r.get_u16(sp).unwrap_or(0));
        sum ^= r.get_ip(src).map(|ip| u64::from(ip.0[11])).unwrap_or(0);
    }
    black_box(sum);
    report("decode (checked view)", N, start);

    let start = Instant::now();
    let mut out = Vec::with_capacity(1 << 20);
    let mut total = 0usize;
    for rec in buf.chunks_exact(size) {
        let r = RecordRef::new_checked(&t, rec).unwrap();
        write_record(&r, b',', &mut out);
        if out.len() > (1 << 20) - 512 {
            total += out.len();
            out.clear();
        }
    }
    black_box(total + out.len());
    report("text (logger line)", N, start);
}
