//! Interface I/O benchmark: prints records/s for `f:` write, `f:` read and an
//! in-process `u:` socket transfer of 1,000,000 flow-like records.
//! Run with `cargo bench -p libtrap-rs`.

use libtrap::{DataFormat, Trap, TrapError};
use std::time::Instant;
use unirec::{RecordBuilder, Template, UrIp, UrTime};

const N: u32 = 1_000_000;
const SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

fn report(what: &str, n: u64, start: Instant) {
    let s = start.elapsed().as_secs_f64();
    println!(
        "{what:<32} {n} records in {s:.3} s = {:.2} M records/s",
        n as f64 / s / 1e6
    );
}

fn records(t: &Template) -> Vec<Vec<u8>> {
    let mut b = RecordBuilder::new(t);
    let f = |n| t.find(n).expect("field");
    (0..N)
        .map(|i| {
            b.set_ip(f("SRC_IP"), UrIp::from_v4((0x0a00_0000 | i).into()))
                .unwrap();
            b.set_ip(
                f("DST_IP"),
                UrIp::from_v4((0xc0a8_0000 | (i & 0xffff)).into()),
            )
            .unwrap();
            b.set_u16(f("SRC_PORT"), (i % 60_000) as u16).unwrap();
            b.set_u16(f("DST_PORT"), 443).unwrap();
            b.set_u8(f("PROTOCOL"), 6).unwrap();
            b.set_u32(f("PACKETS"), i % 100).unwrap();
            b.set_u64(f("BYTES"), u64::from(i) * 40).unwrap();
            b.set_time(
                f("TIME_FIRST"),
                UrTime::from_secs_micros(1_700_000_000, i % 1_000_000),
            )
            .unwrap();
            b.set_time(
                f("TIME_LAST"),
                UrTime::from_secs_micros(1_700_000_001, i % 1_000_000),
            )
            .unwrap();
            let mut out = Vec::new();
            b.finish(&mut out).unwrap();
            out
        })
        .collect()
}

fn main() -> Result<(), TrapError> {
    let dir = std::env::temp_dir().join(format!("libtrap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| TrapError::BadSpec(e.to_string()))?;
    std::env::set_var("TRAP_SOCKET_DIR", &dir);
    let t = Template::parse(SPEC).expect("template");
    let recs = records(&t);
    let fmt = DataFormat::UniRec(t.spec().to_string());
    let path = dir.join("bench.trapcap");

    let start = Instant::now();
    let mut trap = Trap::init(&format!("f:{}", path.display()), Some(0), Some(1))?;
    let out = &mut trap.outputs()[0];
    out.set_format(fmt.clone())?;
    for r in &recs {
        out.send(r)?;
    }
    out.send_eos()?;
    trap.finish()?;
    report("f: write", u64::from(N), start);

    let start = Instant::now();
    let mut trap = Trap::init(&format!("f:{}", path.display()), Some(1), Some(0))?;
    let input = &mut trap.inputs()[0];
    let mut n = 0u64;
    let mut bytes = 0usize;
    loop {
        let m = input.recv()?;
        if m.is_eos() {
            break;
        }
        bytes += m.data.len();
        n += 1;
    }
    assert_eq!(n, u64::from(N), "{bytes}");
    report("f: read", n, start);

    let start = Instant::now();
    let mut sender = Trap::init("u:bench", Some(0), Some(1))?;
    let reader = std::thread::spawn(move || -> Result<u64, TrapError> {
        let mut trap = Trap::init("u:bench", Some(1), Some(0))?;
        let input = &mut trap.inputs()[0];
        let mut n = 0;
        while !input.recv()?.is_eos() {
            n += 1;
        }
        Ok(n)
    });
    let out = &mut sender.outputs()[0];
    out.set_format(fmt)?;
    for r in &recs {
        out.send(r)?;
    }
    out.send_eos()?;
    sender.finish()?;
    let n = reader.join().expect("reader thread")?;
    report("u: socket, same process", n, start);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
