//! Hot paths of the snooper without sockets: encoding a frame as a packet
//! record (with its xxh64), reading it back, and the normalised wire view.
//! `cargo bench -p packet_capture` prints packets/s.

use packet_capture::{wire, PacketEncoder, PacketFields, PACKET_SPEC};
use std::hint::black_box;
use std::time::Instant;
use unirec::{Template, UrTime};

fn frames() -> Vec<Vec<u8>> {
    (0..1024u32)
        .map(|i| {
            let len = [60usize, 66, 100, 590, 1514][i as usize % 5];
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            f.extend([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 1]);
            f.extend([203, 0, 113, (i % 250) as u8 + 1]);
            f.extend(i.to_be_bytes());
            f.resize(len, 0xA5);
            f
        })
        .collect()
}

fn measure(name: &str, n: usize, mut f: impl FnMut(usize)) {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let s = t.elapsed().as_secs_f64();
    println!("{name:<40} {:>12.0} packets/s", n as f64 / s);
}

fn main() {
    let frames = frames();
    let n = 2_000_000;
    let mut enc = PacketEncoder::new();
    measure("encode (record + xxh64)", n, |i| {
        let f = &frames[i % frames.len()];
        black_box(
            enc.encode(UrTime(i as u64), 1, f.len() as u32, f)
                .map(<[u8]>::len)
                .ok(),
        );
    });
    let tmpl = Template::parse(PACKET_SPEC).expect("spec");
    let fields = PacketFields::resolve(&tmpl).expect("fields");
    let recs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            enc.encode(UrTime(1), 1, f.len() as u32, f)
                .map(<[u8]>::to_vec)
        })
        .collect::<Result<_, _>>()
        .expect("encode");
    measure("read (checked view)", n, |i| {
        black_box(fields.read(&tmpl, &recs[i % recs.len()]).ok());
    });
    let mut buf = Vec::new();
    measure("normalised bytes + xxh64", n, |i| {
        let b = wire::normalised(&frames[i % frames.len()], &mut buf);
        black_box(xxhash_rust::xxh64::xxh64(b, 0));
    });
}
