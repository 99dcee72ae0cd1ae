//! sflow_collector's benchmark tool.
//!
//! `sflow_bench mem [DATAGRAMS]`: decodes and encodes datagrams held in
//! memory (8 flow samples of 128-byte headers each, varied 5-tuples): the
//! collector's work per sample without sockets; prints samples/s.
//!
//! `sflow_bench send HOST:PORT DATAGRAMS [PER_SECOND]`: sends the same
//! datagrams over UDP (as fast as possible, or paced), with consecutive
//! sequence numbers so the collector's loss counters tell what was lost.
#![forbid(unsafe_code)]

use sflow_collector::collector::{Collector, Encoder};
use sflow_collector::encode::{DatagramBuilder, FlowSampleSpec};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unirec::{RecordBuilder, UrTime};

const SAMPLES: u32 = 8;

fn datagram(seq: u32) -> Vec<u8> {
    let mut b = DatagramBuilder::new(Some(Ipv4Addr::new(198, 51, 100, 1).into()), 0, seq, seq);
    for i in 0..SAMPLES {
        let n = seq.wrapping_mul(SAMPLES).wrapping_add(i);
        let mut frame = Vec::new();
        let payload = [0x5au8; 200];
        flow_meter::synth::ipv4_frame(
            &mut frame,
            Ipv4Addr::from(0xc633_6400 | (n & 0xff)),
            Ipv4Addr::from(0xcb00_7100 | ((n >> 8) & 0xff)),
            n as u16,
            flow_meter::synth::L4::Tcp {
                sport: 1024 + (n % 50000) as u16,
                dport: 443,
                seq: n,
                ack: 0,
                flags: 0x10,
                payload: &payload,
            },
        );
        b.flow_sample(
            &FlowSampleSpec {
                expanded: false,
                sequence: n,
                source_index: 3,
                sampling_rate: 1000,
                sample_pool: n.wrapping_mul(1000),
                drops: 0,
                input: 3,
                output: 7,
            },
            &frame,
            128,
        );
    }
    b.finish()
}

fn mem(n: u32) {
    let set: Vec<Vec<u8>> = (0..256).map(datagram).collect();
    let mut c = Collector::new();
    let enc = Encoder::new(false);
    let mut b = RecordBuilder::new(&enc.template);
    let mut out = Vec::with_capacity(512);
    let mut bytes = 0u64;
    let start = Instant::now();
    for i in 0..n {
        let d = &set[(i % 256) as usize];
        let _ = c.process(None, d, UrTime(u64::from(i)), |r| {
            b.clear();
            out.clear();
            if enc.encode(r, &mut b).is_ok() && b.finish(&mut out).is_ok() {
                bytes += out.len() as u64;
            }
        });
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sflow decode+encode in memory: {n} datagrams, {} samples, {} records ({} MB) in {secs:.3} s: {:.2} M samples/s",
        c.stats.flow_samples,
        c.stats.records,
        bytes / 1_000_000,
        c.stats.flow_samples as f64 / secs / 1e6
    );
}

fn send(to: &str, n: u32, rate: Option<u32>) -> std::io::Result<()> {
    let set: Vec<Vec<u8>> = (0..256).map(datagram).collect();
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.connect(to)?;
    let start = Instant::now();
    for i in 0..n {
        let mut d = set[(i % 256) as usize].clone();
        // Datagram sequence numbers 1, 2, … (offset 12 with an IPv4 agent).
        d[16..20].copy_from_slice(&(i + 1).to_be_bytes());
        // Sample sequence numbers follow too.
        let mut at = 28;
        for k in 0..SAMPLES {
            d[at + 8..at + 12].copy_from_slice(&(i * SAMPLES + k + 1).to_be_bytes());
            let len = u32::from_be_bytes([d[at + 4], d[at + 5], d[at + 6], d[at + 7]]) as usize;
            at += 8 + len;
        }
        while s.send(&d).is_err() {
            std::thread::yield_now();
        }
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(f64::from(i + 1) / f64::from(r));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {n} datagrams ({} samples) in {secs:.3} s: {:.2} M samples/s offered",
        u64::from(n) * u64::from(SAMPLES),
        f64::from(n) * f64::from(SAMPLES) / secs / 1e6
    );
    Ok(())
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: u32| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match a.get(1).map(String::as_str) {
        Some("mem") => mem(num(2, 500_000)),
        Some("send") if a.len() >= 4 => {
            let rate = a.get(4).and_then(|s| s.parse().ok());
            if let Err(e) = send(&a[2], num(3, 100_000), rate) {
                eprintln!("sflow_bench: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ => {
            eprintln!("usage: sflow_bench mem [DATAGRAMS] | sflow_bench send HOST:PORT DATAGRAMS [PER_SECOND]");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
