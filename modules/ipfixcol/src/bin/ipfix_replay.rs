//! ipfix_replay — benchmark helper: records an IPFIX stream from TCP into
//! a file, and replays such a file over UDP at a given rate.
//!
//!   ipfix_replay record PORT FILE            accept one TCP exporter, write its messages
//!   ipfix_replay send FILE HOST:PORT [-r RECORDS_PER_S] [-s SECONDS] [-l LOOPS]
//!
//! `send` rewrites each message's sequence number to the running count of
//! data records (each message's count found by decoding the file), so across loops the collector's sequence check counts
//! exactly the records the network lost. It prints what it sent.

use anyhow::{bail, Context, Result};
use ipfixcol::collector::{Collector, Config, Origin, OutputFields, SessionId, Sink, Transport};
use ipfixcol::mapping::Mapping;
use ipfixcol::wire::ipfix_length;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn messages(data: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let Some(len) = ipfix_length(rest).filter(|&l| l >= 16 && l <= rest.len()) else {
            bail!("no IPFIX message at byte {at}");
        };
        out.push(&rest[..len]);
        at += len;
    }
    Ok(out)
}

fn record(port: &str, file: &str) -> Result<()> {
    let l = TcpListener::bind(format!("127.0.0.1:{port}"))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let (mut s, _) = l.accept()?;
    let mut f = std::fs::File::create(file).with_context(|| format!("cannot create {file}"))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n])?;
    }
    Ok(())
}

fn send(file: &str, to: &str, rate: Option<f64>, seconds: Option<f64>, loops: u64) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
    let msgs = messages(&data)?;
    if msgs.is_empty() {
        bail!("{file} holds no message");
    }
    // Data records per message (what its sequence number counts), by
    // decoding the file once.
    struct Nothing;
    impl Sink for Nothing {
        fn format(&mut self, _: usize, _: &unirec::Template) {}
        fn record(&mut self, _: usize, _: &[u8]) {}
    }
    let mut col = Collector::new(
        Config::default(),
        Arc::new(Mapping::new()),
        vec![OutputFields::Dynamic],
    );
    let origin = Origin {
        session: SessionId(1),
        transport: Transport::File,
        exporter: None,
    };
    let counts: Vec<u32> = msgs
        .iter()
        .map(|m| {
            let before = col.stats.records + col.stats.options_records;
            col.process(origin, m, &mut Nothing);
            (col.stats.records + col.stats.options_records - before) as u32
        })
        .collect();
    let per_loop: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(to)
        .with_context(|| format!("cannot reach {to}"))?;
    let start = Instant::now();
    let mut sent_records = 0u64;
    let mut sent_msgs = 0u64;
    let mut next_seq = 0u32;
    let mut buf = Vec::with_capacity(65536);
    'outer: for _ in 0..loops {
        for (m, &c) in msgs.iter().zip(&counts) {
            if seconds.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
                break 'outer;
            }
            if let Some(r) = rate {
                // Pace on records: wait until this one is due.
                let due = Duration::from_secs_f64(sent_records as f64 / r);
                while start.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
            buf.clear();
            buf.extend_from_slice(m);
            buf[8..12].copy_from_slice(&next_seq.to_be_bytes());
            next_seq = next_seq.wrapping_add(c);
            // A full socket buffer: retry (loss is the receiver's to count).
            while let Err(e) = sock.send(&buf) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    return Err(e.into());
                }
            }
            sent_records += u64::from(c);
            sent_msgs += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent_msgs} messages, {sent_records} records in {secs:.2} s ({:.2} M records/s; {per_loop} records per loop)",
        sent_records as f64 / secs / 1e6
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ipfix_replay record PORT FILE | ipfix_replay send FILE HOST:PORT [-r RECORDS_PER_S] [-s SECONDS] [-l LOOPS]";
    match args.first().map(String::as_str) {
        Some("record") if args.len() == 3 => record(&args[1], &args[2]),
        Some("send") if args.len() >= 3 => {
            let (mut rate, mut secs, mut loops) = (None, None, 1u64);
            let mut it = args[3..].iter();
            while let Some(flag) = it.next() {
                let v = it.next().context(usage)?;
                match flag.as_str() {
                    "-r" => rate = Some(v.parse().context("-r: records per second")?),
                    "-s" => secs = Some(v.parse().context("-s: seconds")?),
                    "-l" => loops = v.parse().context("-l: loops")?,
                    _ => bail!("{usage}"),
                }
            }
            if secs.is_some() && loops == 1 {
                loops = u64::MAX;
            }
            send(&args[1], &args[2], rate, secs, loops)
        }
        _ => bail!("{usage}"),
    }
}
