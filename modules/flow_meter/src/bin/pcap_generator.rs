//! pcap_generator — synthetic captures: the benchmark capture, or with
//! `--demo` the demo's small scenario (web and DNS traffic plus a port scan,
//! see `flow_meter::synth::demo_scenario`).
//!
//! The benchmark capture is a classic pcap (Ethernet, µs timestamps, whole frames) of N packets
//! in about F bidirectional TCP/UDP/ICMP flows: C flows are active at a time,
//! each sends 2–18 packets in both directions and is then replaced by a new
//! one. Flows speak their port's protocol, so that the process plugins have
//! work: TCP starts with a handshake, port 80 carries an HTTP request and
//! response, 443 a TLS ClientHello, ServerHello and application data
//! records, 22 SSH banners, UDP 53 DNS queries and answers (a new id per
//! pair); the rest is zero-filled data. Frames have valid checksums.
//! Deterministic for a given seed.

use anyhow::{Context, Result};
use clap::Parser;
use flow_meter::synth::{self, demo_scenario, PcapWriter, ACK, L4, PSH, SYN};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

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
    let mut frame = Vec::with_capacity(1600);
    let zeros = [0u8; 1400];
    let mut t_us: u64 = 1_700_000_000_000_000;
    let mean = (args.packets / flows).max(2);
    let concurrent = args.concurrent.clamp(1, flows) as usize;
    // (flow number, packets left, packets sent, bytes sent by client, by server)
    let mut active: Vec<(u64, u64, u64, u32, u32)> = (0..concurrent as u64)
        .map(|f| (f, 2 + f % (2 * mean - 1), 0, 0, 0))
        .collect();
    let mut next_flow = concurrent as u64;
    for i in 0..args.packets {
        let r = next(&mut rng);
        let slot = (r % concurrent as u64) as usize;
        let (flow, _, sent, client_bytes, server_bytes) = active[slot];
        t_us += (r >> 40) % 20;
        let proto: u8 = match flow % 10 {
            0..=6 => 6,
            7 | 8 => 17,
            _ => 1,
        };
        let a = Ipv4Addr::new(10, (flow >> 16) as u8, (flow >> 8) as u8, flow as u8);
        let b = Ipv4Addr::new(192, 168, (flow >> 8) as u8 ^ 0x55, (flow % 251) as u8);
        let (sport, dport) = (
            1024 + (flow % 60_000) as u16,
            [80u16, 443, 53, 22][(flow % 4) as usize],
        );
        let data = zeros
            .len()
            .min([0usize, 0, 40, 500, 1400][(r >> 50) as usize % 5]);
        // The conversation: TCP handshake, the application's request and
        // answer, then data both ways; DNS query/answer pairs.
        let app = sent < 4 || (proto == 17 && dport == 53);
        let reverse = if app {
            sent % 2 == 1
        } else {
            (r >> 32) & 1 == 1
        };
        let payload: Vec<u8> = match (proto, dport, sent) {
            (6, _, 0 | 1) => Vec::new(),
            (6, 80, 2) => synth::http_request(
                &format!("www{}.example.test", flow % 97),
                &format!("/page/{}.html", flow % 1000),
                "Mozilla/5.0 (X11; Linux x86_64) nemea-rs-synth",
            ),
            (6, 80, 3) => {
                let mut v = synth::http_response_head(4000);
                v.extend_from_slice(&zeros[..data.min(1000)]);
                v
            }
            (6, 443, 2) => {
                synth::tls_client_hello(&format!("cdn{}.example.test", flow % 211), flow)
            }
            (6, 443, 3) => synth::tls_server_hello(flow),
            (6, 443, _) if data > 0 => {
                let mut v = vec![0x17, 0x03, 0x03];
                v.extend_from_slice(&(data as u16).to_be_bytes());
                v.extend_from_slice(&zeros[..data]);
                v
            }
            (6, 22, 2 | 3) => b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec(),
            (17, 53, n) => {
                let q = synth::dns_query(
                    (flow as u16).wrapping_add((n / 2) as u16),
                    &format!("host{}.example.test", (flow + n / 2) % 5000),
                );
                if reverse {
                    synth::dns_answer(&q, b)
                } else {
                    q
                }
            }
            _ => zeros[..data].to_vec(),
        };
        let flags = match sent {
            0 => SYN,
            1 => SYN | ACK,
            _ if payload.is_empty() => ACK,
            _ => PSH | ACK,
        };
        let (src, dst, sp, dp) = if reverse {
            (b, a, dport, sport)
        } else {
            (a, b, sport, dport)
        };
        // Sequence numbers follow the bytes each side sent (SYNs count one).
        let (cseq, sseq) = (
            1000u32.wrapping_add(client_bytes),
            5000u32.wrapping_add(server_bytes),
        );
        let (seq, ack) = if reverse { (sseq, cseq) } else { (cseq, sseq) };
        let used = payload.len() as u32 + u32::from(sent < 2);
        let entry = &mut active[slot];
        entry.1 -= 1;
        entry.2 += 1;
        if reverse {
            entry.4 = entry.4.wrapping_add(used);
        } else {
            entry.3 = entry.3.wrapping_add(used);
        }
        if entry.1 == 0 {
            *entry = (next_flow, 2 + next(&mut rng) % (2 * mean - 1), 0, 0, 0);
            next_flow += 1;
        }
        let l4 = match proto {
            6 => L4::Tcp {
                sport: sp,
                dport: dp,
                seq,
                ack: if sent == 0 { 0 } else { ack },
                flags,
                payload: &payload,
            },
            17 => L4::Udp {
                sport: sp,
                dport: dp,
                payload: &payload,
            },
            _ => L4::Icmp {
                kind: if reverse { 0 } else { 8 },
                payload: &payload,
            },
        };
        frame.clear();
        synth::ipv4_frame(&mut frame, src, dst, i as u16, l4);
        w.packet(t_us, &frame)?;
    }
    w.into_inner().flush()?;
    Ok(())
}
