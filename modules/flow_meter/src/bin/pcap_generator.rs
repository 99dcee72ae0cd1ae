//! pcap_generator — synthetic captures: the benchmark capture, or with
//! `--demo` the demo's small scenario (web and DNS traffic plus a port scan,
//! see `flow_meter::synth::demo_scenario`).
//!
//! The benchmark capture is a classic pcap (Ethernet, µs timestamps, whole frames) of N packets
//! in about F bidirectional TCP/UDP/ICMP flows: C flows are active at a time,
//! each sends 2–18 packets in both directions and is then replaced by a new
//! one. Deterministic for a given seed.

use anyhow::{Context, Result};
use clap::Parser;
use flow_meter::synth::{demo_scenario, PcapWriter};
use std::fs::File;
use std::io::{BufWriter, Write};

/// Generates a synthetic pcap: the benchmark capture (-n, -f, -c, -s), or
/// the demo scenario with --demo.
#[derive(Parser, Debug)]
#[command(name = "pcap_generator", version)]
struct Args {
    /// Output file.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: String,
    /// Write the demo scenario instead: a client's DNS and web traffic, then a
    /// SYN scan of 100 ports of its web server (documentation addresses).
    #[arg(long = "demo", conflicts_with_all = ["packets", "flows", "concurrent", "seed"])]
    demo: bool,
    /// Number of packets.
    #[arg(short = 'n', long = "packets", default_value_t = 3_000_000)]
    packets: u64,
    /// Number of flows (about; the mean flow has 10 packets when N/F = 10).
    #[arg(short = 'f', long = "flows", default_value_t = 300_000)]
    flows: u64,
    /// Flows active at the same time.
    #[arg(short = 'c', long = "concurrent", default_value_t = 20_000)]
    concurrent: u64,
    /// Seed.
    #[arg(short = 's', long = "seed", default_value_t = 7)]
    seed: u64,
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() -> Result<()> {
    let args: Args = libtrap::module::parse_cli("pcap_generator");
    let flows = args.flows.max(1);
    let file =
        File::create(&args.write).with_context(|| format!("cannot create {}", args.write))?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    if args.demo {
        for (ts, frame) in demo_scenario() {
            w.packet(ts, &frame)?;
        }
        w.into_inner().flush()?;
        return Ok(());
    }
    let mut rng = args.seed | 1;
    let mut frame = vec![0u8; 1600];
    let mut t_us: u64 = 1_700_000_000_000_000;
    let mean = (args.packets / flows).max(2);
    let concurrent = args.concurrent.clamp(1, flows) as usize;
    // (flow number, packets left)
    let mut active: Vec<(u64, u64)> = (0..concurrent as u64)
        .map(|f| (f, 2 + f % (2 * mean - 1)))
        .collect();
    let mut next_flow = concurrent as u64;
    for i in 0..args.packets {
        let r = next(&mut rng);
        let slot = (r % concurrent as u64) as usize;
        let flow = active[slot].0;
        active[slot].1 -= 1;
        if active[slot].1 == 0 {
            active[slot] = (next_flow, 2 + next(&mut rng) % (2 * mean - 1));
            next_flow += 1;
        }
        let reverse = (r >> 32) & 1 == 1;
        t_us += (r >> 40) % 20;
        let proto: u8 = match flow % 10 {
            0..=6 => 6,
            7 | 8 => 17,
            _ => 1,
        };
        let a = [10, (flow >> 16) as u8, (flow >> 8) as u8, flow as u8];
        let b = [192, 168, (flow >> 8) as u8 ^ 0x55, (flow % 251) as u8];
        let (sport, dport) = (
            1024 + (flow % 60_000) as u16,
            [80u16, 443, 53, 22][(flow % 4) as usize],
        );
        let (src, dst, sp, dp) = if reverse {
            (b, a, dport, sport)
        } else {
            (a, b, sport, dport)
        };
        let payload = [0usize, 0, 40, 500, 1400][(r >> 50) as usize % 5];
        let l4_len = match proto {
            6 => 20,
            17 => 8,
            _ => 8,
        };
        let ip_len = 20 + l4_len + payload;
        let caplen = 14 + ip_len;
        frame[..14].copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
        let ip = &mut frame[14..34];
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let l4 = &mut frame[34..54];
        l4.fill(0);
        match proto {
            6 => {
                l4[0..2].copy_from_slice(&sp.to_be_bytes());
                l4[2..4].copy_from_slice(&dp.to_be_bytes());
                l4[12] = 5 << 4;
                l4[13] = if payload == 0 { 0x02 } else { 0x18 };
            }
            17 => {
                l4[0..2].copy_from_slice(&sp.to_be_bytes());
                l4[2..4].copy_from_slice(&dp.to_be_bytes());
                l4[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
            }
            _ => l4[0] = if reverse { 0 } else { 8 },
        }
        w.packet(t_us, &frame[..caplen])?;
    }
    w.into_inner().flush()?;
    Ok(())
}
