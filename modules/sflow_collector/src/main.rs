//! sflow_collector — sFlow v5 from switches and routers: one UniRec record
//! per sampled packet.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use flow_meter::parser::{parse, LinkType, Packet};
use flow_meter::pcapfile::PcapReader;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Output, Trap};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sflow_collector::collector::{Collector, Encoder, SampleRecord, Stats};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use unirec::{RecordBuilder, UrTime};

/// Receives sFlow version 5 datagrams (flow samples and expanded flow
/// samples with their raw packet header, sampled Ethernet, IPv4 and IPv6
/// records; counter samples are counted and skipped) and sends one UniRec
/// record per sampled IP packet: the packet's 5-tuple, TCP flags, MACs,
/// its header bytes (HEADER) and frame length, and the sample's agent,
/// sub-agent, source id, input/output ifIndex, sampling rate, sample pool
/// and drops. The basic flow fields are filled as for a flow of one packet
/// (PACKETS 1, BYTES the IP length; --scale multiplies both by the sampling
/// rate), so flow detectors such as ipblacklistfilter read the records.
/// TIME_FIRST = TIME_LAST = the time the datagram was received (-r: the
/// capture's time). Sequence gaps are counted per agent (datagrams) and per
/// source id (samples); malformed datagrams are counted and skipped whole,
/// with one log line a second at most.
#[derive(Parser, Debug)]
#[command(
    name = "sflow_collector",
    version,
    after_help = "Interfaces: 0 inputs, 1 output. Run `sflow_collector -h trap` for the -i syntax.\n\
Output fields: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL, TCP_FLAGS, PACKETS, BYTES, TIME_FIRST, \
TIME_LAST, SRC_MAC, DST_MAC, TOS, AGENT_IP, SUB_AGENT_ID, SOURCE_ID, INPUT_IFINDEX, OUTPUT_IFINDEX, \
SAMPLING_RATE, SAMPLE_POOL, DROPS, FRAME_LEN, ETHERTYPE, HEADER (bytes).\n\
Examples:\n  sflow_collector -i u:samples --udp 6343\n  sflow_collector -i u:samples --udp 127.0.0.1:6343 --udp [::1]:6343\n  \
sflow_collector -i f:samples.trapcap -r sflow.pcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Listen for sFlow on UDP `[HOST:]PORT` (repeatable; HOST empty: all
    /// IPv4 and IPv6 addresses).
    #[arg(long = "udp", value_name = "[HOST:]PORT")]
    udp: Vec<String>,
    /// Read the sFlow datagrams of a pcap file (UDP payloads; repeatable);
    /// without --udp the module ends after the last file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    files: Vec<String>,
    /// PACKETS and BYTES estimate the traffic: the sample's values times
    /// its sampling rate.
    #[arg(long = "scale")]
    scale: bool,
    /// Do not send the end-of-stream message at the end.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

/// `[HOST:]PORT` → a socket address (HOST empty: `[::]`, dual stack).
fn listen_addr(spec: &str) -> Result<SocketAddr> {
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => ("", spec),
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("--udp {spec:?}: the port must be a number (give [HOST:]PORT)"))?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("--udp {spec:?}: cannot resolve {host:?}: {e}"))?
        .next()
        .with_context(|| format!("--udp {spec:?}: {host:?} has no address"))
}

fn udp_socket(addr: SocketAddr) -> Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = if addr.ip().is_unspecified() && addr.is_ipv6() {
        UdpSocket::bind(addr)
            .or_else(|_| UdpSocket::bind(SocketAddr::from(([0u8; 4], addr.port()))))
    } else {
        UdpSocket::bind(addr)
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on UDP {addr}: {e} (another collector on that port? below 1024 needs root)"
        )
    })?;
    let _ = setsockopt(&sock, sockopt::RcvBuf, &(16 << 20));
    sock.set_nonblocking(true)?;
    Ok(sock)
}

fn plain_ip(a: SocketAddr) -> IpAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    }
}

fn now() -> UrTime {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UrTime::from_secs_nanos(d.as_secs() as u32, d.subsec_nanos())
}

/// Counters on the service interface.
struct Published {
    datagrams: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
    malformed: Arc<AtomicU64>,
    lost_datagrams: Arc<AtomicU64>,
    lost_samples: Arc<AtomicU64>,
}

impl Published {
    fn new(trap: &Trap) -> Published {
        Published {
            datagrams: trap.counter("datagrams"),
            samples: trap.counter("flow_samples"),
            records: trap.counter("records"),
            malformed: trap.counter("malformed"),
            lost_datagrams: trap.counter("lost_datagrams"),
            lost_samples: trap.counter("lost_flow_samples"),
        }
    }
    fn update(&self, s: &Stats) {
        self.datagrams.store(s.datagrams, Relaxed);
        self.samples.store(s.flow_samples, Relaxed);
        self.records.store(s.records, Relaxed);
        self.malformed.store(s.malformed, Relaxed);
        self.lost_datagrams.store(s.lost_datagrams, Relaxed);
        self.lost_samples.store(s.lost_flow_samples, Relaxed);
    }
}

/// Decodes datagrams and sends their records; logs malformed ones once a
/// second at most.
struct Pipeline<'a> {
    col: Collector,
    enc: Encoder,
    out: &'a mut Output,
    buffers: unirec::RecordBuffers,
    record: Vec<u8>,
    err: Option<anyhow::Error>,
    malformed_logged: u64,
    logged: Option<Instant>,
}

impl Pipeline<'_> {
    fn datagram(&mut self, peer: Option<IpAddr>, data: &[u8], time: UrTime) {
        let Pipeline {
            col,
            enc,
            out,
            buffers,
            record,
            err,
            ..
        } = self;
        let mut b = RecordBuilder::with_buffers(&enc.template, std::mem::take(buffers));
        let mut send = |r: &SampleRecord| {
            if err.is_some() {
                return;
            }
            b.clear();
            record.clear();
            let sent = enc
                .encode(r, &mut b)
                .map_err(anyhow::Error::from)
                .and_then(|_| b.finish(record).map_err(anyhow::Error::from))
                .and_then(|_| out.send(record).map_err(anyhow::Error::from));
            if let Err(e) = sent {
                *err = Some(e);
            }
        };
        let _ = col.process(peer, data, time, &mut send);
        *buffers = b.into_buffers();
        self.log_malformed(false);
    }

    fn log_malformed(&mut self, last: bool) {
        let n = self.col.stats.malformed - self.malformed_logged;
        if n == 0 {
            return;
        }
        if !last
            && self
                .logged
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let why = self
            .col
            .last_error
            .map(|e| e.to_string())
            .unwrap_or_default();
        libtrap::log::warn(&format!("{n} malformed datagram(s) skipped (last: {why})"));
        self.malformed_logged = self.col.stats.malformed;
        self.logged = Some(Instant::now());
    }
}

/// The UDP payloads of a pcap file, with their capture times.
fn read_file(path: &str, p: &mut Pipeline<'_>) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let mut r = PcapReader::new(&data).with_context(|| {
        format!("{path}: not a pcap file (give a capture of the sFlow datagrams)")
    })?;
    let link = r
        .dlt()
        .and_then(LinkType::from_dlt)
        .with_context(|| format!("{path}: link type {} is not supported", r.linktype()))?;
    let mut pkt = Packet::default();
    while let Some(rec) = r.next(&data) {
        if libtrap::is_terminated() {
            break;
        }
        let rec = rec.map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        if parse(link, rec.data, &mut pkt).is_err() || pkt.protocol != 17 {
            continue;
        }
        pkt.keep_payload(rec.data);
        let peer = unirec::UrIp(pkt.src_ip).to_std();
        let time =
            UrTime::from_secs_micros(rec.ts_sec as u32, rec.ts_usec.clamp(0, 999_999) as u32);
        let payload = std::mem::take(&mut pkt.payload);
        p.datagram(Some(peer), &payload, time);
        pkt.payload = payload;
        if p.err.is_some() {
            break;
        }
    }
    Ok(())
}

fn summary(c: &Collector, elapsed: Duration) {
    let s = &c.stats;
    libtrap::log::info(
        0,
        &format!(
            "{} datagrams ({} malformed), {} flow samples, {} counter samples, {} other, {} not IP, {} records; lost by sequence: {} datagrams, {} flow samples, {} counter samples; {} restarts, {:.2} s",
            s.datagrams, s.malformed, s.flow_samples, s.counter_samples, s.other_samples, s.not_ip, s.records,
            s.lost_datagrams, s.lost_flow_samples, s.lost_counter_samples, s.restarts, elapsed.as_secs_f64()
        ),
    );
    for (k, a) in c.agents() {
        let agent = k.agent.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
        libtrap::log::info(
            0,
            &format!(
                "agent {agent} sub-agent {}: {} datagrams, {} datagrams and {} samples lost",
                k.sub_agent, a.datagrams, a.lost_datagrams, a.lost_samples
            ),
        );
    }
}

fn run(args: &Args) -> Result<()> {
    if args.udp.is_empty() && args.files.is_empty() {
        bail!("no input: give --udp [HOST:]PORT or -r FILE");
    }
    let socks = args
        .udp
        .iter()
        .map(|s| listen_addr(s).and_then(udp_socket))
        .collect::<Result<Vec<_>>>()?;
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(1))?;
    let published = Published::new(&trap);
    let enc = Encoder::new(args.scale);
    let spec = enc.template.spec().to_string();
    let start = Instant::now();
    let (col, fatal) = {
        let Some(out) = trap.outputs().first_mut() else {
            bail!("no output interface (give -i u:NAME)");
        };
        out.set_format(DataFormat::UniRec(spec))?;
        let mut p = Pipeline {
            col: Collector::new(),
            enc,
            out,
            buffers: Default::default(),
            record: Vec::new(),
            err: None,
            malformed_logged: 0,
            logged: None,
        };
        let mut fatal = None;
        for f in &args.files {
            if let Err(e) = read_file(f, &mut p) {
                fatal = Some(e);
                break;
            }
            published.update(&p.col.stats);
        }
        let mut buf = vec![0u8; 65536];
        while fatal.is_none() && p.err.is_none() && !socks.is_empty() && !libtrap::is_terminated() {
            let mut fds: Vec<PollFd> = socks
                .iter()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    fatal = Some(anyhow::anyhow!("poll: {e}"));
                    break;
                }
            }
            let time = now();
            for s in &socks {
                // What is queued, a bounded number at a time so one busy
                // socket does not starve the others or the stop check.
                for _ in 0..256 {
                    match s.recv_from(&mut buf) {
                        Ok((n, peer)) => p.datagram(Some(plain_ip(peer)), &buf[..n], time),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock | ErrorKind::Interrupted
                            ) =>
                        {
                            break
                        }
                        Err(e) => {
                            fatal = Some(anyhow::anyhow!("UDP receive: {e}"));
                            break;
                        }
                    }
                }
            }
            published.update(&p.col.stats);
        }
        p.log_malformed(true);
        if let Some(e) = p.err.take() {
            if !libtrap::is_terminated() {
                fatal.get_or_insert(e);
            }
        }
        (p.col, fatal)
    };
    published.update(&col.stats);
    summary(&col, start.elapsed());
    let ended = trap.end(!args.no_eos);
    if let Some(e) = fatal {
        return Err(e);
    }
    ended?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("sflow_collector");
    module::start("sflow_collector", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
