//! session_probe — per-session DDoS and mining features per time window,
//! from an eBPF TC program on the interface (or libpcap with --userspace).

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Output, Trap, TrapError};
use session_probe::ebpf::Probe;
use session_probe::features::{Counters, DoubleBuffer, Sizes, WindowContents};
use session_probe::packet::parse_ethernet;
use session_probe::records::{
    ddos_records, mining_records, DdosEncoder, MiningEncoder, DDOS_SPEC, MINING_SPEC,
};
use session_probe::window::Windower;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unirec::{RecordBuilder, Template};

/// Extracts per-session features of the TCP, UDP and ICMP traffic of an
/// interface in windows of -w seconds, as the eBPF TrafficAnalyzer does:
/// an eBPF program on TC ingress and egress keeps up to --sessions sessions
/// per window (more are refused and counted until the next window) and
/// captures up to --packets-per-session packets of each (--packets-total in
/// all); the module swaps its two map sets every window and drains the idle
/// one. Each window goes out as DDoS packet features on the first output
/// (one record per direction of a session, from the captured packets) and
/// mining session features on the second (one record per TCP/UDP session,
/// oriented server/client: SERVER_ID_METHOD 1 = SYN seen, 2 = destination
/// port < 1024, 3 = source port < 1024, 4 = the lower port).
///
/// --userspace computes the same features from a libpcap capture (-I live,
/// -r a file; windows then follow the packets' time), where eBPF cannot be
/// loaded.
#[derive(Parser, Debug)]
#[command(
    name = "session_probe",
    version,
    after_help = "Interfaces: 0 inputs, 2 outputs (DDoS packet features, mining session features).\n\
Run `session_probe -h trap` for the -i syntax.\n\
Output templates:\n  DDoS:   SRC_IP,DST_IP,SRC_PORT,DST_PORT,PROTOCOL,TCP_FLAGS,PACKETS,BYTES,TIME_FIRST,TIME_LAST,WINDOW_ID\n  mining: SERVER_IP,CLIENT_IP,SERVER_PORT,CLIENT_PORT,PROTOCOL,N_PACKETS_SERVER,N_PACKETS_CLIENT,N_BITS_SERVER,N_BITS_CLIENT,TIME_FIRST,TIME_LAST,SERVER_ID_METHOD,WINDOW_ID\n\
Examples:\n  session_probe -I eth0 -w 5 -i u:ddos_features,u:mining_features\n  session_probe --userspace -r capture.pcap -i f:ddos.trapcap,f:mining.trapcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// The network interface to probe (both directions).
    #[arg(short = 'I', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// Read packets from a pcap file (implies --userspace).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    read: Option<String>,
    /// Compute the features in user space from a libpcap capture instead
    /// of the eBPF program.
    #[arg(long)]
    userspace: bool,
    /// Window length in seconds (fractions allowed).
    #[arg(
        short = 'w',
        long = "window",
        value_name = "SECONDS",
        default_value_t = 5.0
    )]
    window: f64,
    /// Sessions tracked per window (N_SESSION).
    #[arg(long = "sessions", value_name = "N", default_value_t = 4096)]
    sessions: u32,
    /// Packets captured per session per window (N_PACKET_PER_SESSION).
    #[arg(long = "packets-per-session", value_name = "N", default_value_t = 16)]
    packets_per_session: u32,
    /// Packets captured per window in all (N_PACKET_TOTAL; default
    /// sessions × packets-per-session).
    #[arg(long = "packets-total", value_name = "N")]
    packets_total: Option<u32>,
    /// Do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

impl Args {
    fn sizes(&self) -> Result<Sizes> {
        if self.sessions == 0 || self.packets_per_session == 0 {
            bail!("--sessions and --packets-per-session must be at least 1");
        }
        let total = match self.packets_total {
            Some(0) => bail!("--packets-total must be at least 1"),
            Some(n) => n,
            None => self
                .sessions
                .checked_mul(self.packets_per_session)
                .ok_or_else(|| {
                    anyhow!("--sessions × --packets-per-session exceeds 2^32: give --packets-total")
                })?,
        };
        Ok(Sizes {
            n_session: self.sessions,
            n_packet_per_session: self.packets_per_session,
            n_packet_total: total,
        })
    }

    fn window(&self) -> Result<Duration> {
        if !(self.window.is_finite() && self.window >= 0.01 && self.window <= 86400.0) {
            bail!(
                "-w {}: the window must be 0.01 to 86400 seconds",
                self.window
            );
        }
        Ok(Duration::from_secs_f64(self.window))
    }
}

/// The kernel's (or user space's) refusals, on the service interface.
struct ServiceCounters {
    windows: Arc<AtomicU64>,
    sessions_refused: Arc<AtomicU64>,
    packets_untracked: Arc<AtomicU64>,
    packets_over_quota: Arc<AtomicU64>,
    packets_queue_full: Arc<AtomicU64>,
}

impl ServiceCounters {
    fn new(trap: &Trap) -> ServiceCounters {
        ServiceCounters {
            windows: trap.counter("windows"),
            sessions_refused: trap.counter("sessions_refused"),
            packets_untracked: trap.counter("packets_untracked"),
            packets_over_quota: trap.counter("packets_over_quota"),
            packets_queue_full: trap.counter("packets_queue_full"),
        }
    }

    fn publish(&self, windows: u64, t: &Counters) {
        self.windows.store(windows, Relaxed);
        self.sessions_refused.store(t.sessions_refused, Relaxed);
        self.packets_untracked.store(t.packets_untracked, Relaxed);
        self.packets_over_quota.store(t.packets_over_quota, Relaxed);
        self.packets_queue_full.store(t.packets_queue_full, Relaxed);
    }
}

/// The two outputs and what they sent.
struct Sink<'t> {
    service: ServiceCounters,
    ddos_t: &'t Template,
    mining_t: &'t Template,
    ddos: DdosEncoder,
    mining: MiningEncoder,
    buf: Vec<u8>,
    windows: u64,
    ddos_sent: u64,
    mining_sent: u64,
    totals: Counters,
}

impl<'t> Sink<'t> {
    fn new(
        ddos_t: &'t Template,
        mining_t: &'t Template,
        service: ServiceCounters,
    ) -> Result<Sink<'t>> {
        Ok(Sink {
            service,
            ddos_t,
            mining_t,
            ddos: DdosEncoder::new(ddos_t)?,
            mining: MiningEncoder::new(mining_t)?,
            buf: Vec::new(),
            windows: 0,
            ddos_sent: 0,
            mining_sent: 0,
            totals: Counters::default(),
        })
    }

    /// Sends one window's records; `Err(Terminated)` when stopped meanwhile.
    fn window(
        &mut self,
        outs: &mut [Output],
        w: &WindowContents,
        id: u32,
    ) -> Result<(), TrapError> {
        let ddos = ddos_records(w, id);
        let mining = mining_records(w, id);
        let mut b = RecordBuilder::new(self.ddos_t);
        for r in &ddos {
            b.clear();
            self.ddos.encode(r, &mut b).map_err(bad)?;
            self.buf.clear();
            b.finish(&mut self.buf).map_err(bad)?;
            outs[0].send(&self.buf)?;
        }
        let mut b = RecordBuilder::new(self.mining_t);
        for r in &mining {
            b.clear();
            self.mining.encode(r, &mut b).map_err(bad)?;
            self.buf.clear();
            b.finish(&mut self.buf).map_err(bad)?;
            outs[1].send(&self.buf)?;
        }
        outs[0].flush()?;
        outs[1].flush()?;
        self.windows += 1;
        self.ddos_sent += ddos.len() as u64;
        self.mining_sent += mining.len() as u64;
        self.totals.add(&w.counters);
        self.service.publish(self.windows, &self.totals);
        let c = &w.counters;
        eprintln!(
            "Info: window {id}: {} sessions, {} packets captured, {} DDoS records, {} mining records; refused: {} sessions ({} packets), {} packets over the session quota, {} over the total",
            w.sessions.len(),
            w.packets.len(),
            ddos.len(),
            mining.len(),
            c.sessions_refused,
            c.packets_untracked,
            c.packets_over_quota,
            c.packets_queue_full
        );
        Ok(())
    }
}

fn bad(e: impl std::fmt::Display) -> TrapError {
    TrapError::BadSpec(e.to_string())
}

fn run(args: &Args) -> Result<()> {
    let sizes = args.sizes()?;
    let window = args.window()?;
    let userspace = args.userspace || args.read.is_some();
    if args.interface.is_none() && args.read.is_none() {
        bail!("no input: give -I IFACE (eBPF, or libpcap with --userspace) or -r FILE");
    }
    let ddos_t = Template::parse(DDOS_SPEC)?;
    let mining_t = Template::parse(MINING_SPEC)?;
    // Load the data plane before the outputs exist, so that a refusal is
    // the one error printed.
    let probe = if userspace {
        None
    } else {
        let iface = args.interface.as_deref().unwrap_or_default();
        let p = Probe::attach(iface, sizes)?;
        eprintln!("Info: probing {iface} (eBPF on TC ingress and egress)");
        Some(p)
    };
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(2))?;
    let service = ServiceCounters::new(&trap);
    let outs = trap.outputs();
    outs[0].set_format(DataFormat::UniRec(ddos_t.spec().to_string()))?;
    outs[1].set_format(DataFormat::UniRec(mining_t.spec().to_string()))?;
    let mut sink = Sink::new(&ddos_t, &mining_t, service)?;
    let started = Instant::now();
    let r = match probe {
        Some(p) => run_ebpf(p, window, outs, &mut sink),
        None => run_userspace(args, sizes, window, outs, &mut sink),
    };
    let r = match r {
        Err(e) if matches!(e.downcast_ref::<TrapError>(), Some(TrapError::Terminated)) => Ok(()),
        r => r,
    };
    let t = &sink.totals;
    eprintln!(
        "Info: {} windows, {} DDoS records, {} mining records in {:.3}s; refused in all: {} sessions ({} packets), {} packets over the session quota, {} over the total",
        sink.windows,
        sink.ddos_sent,
        sink.mining_sent,
        started.elapsed().as_secs_f64(),
        t.sessions_refused,
        t.packets_untracked,
        t.packets_over_quota,
        t.packets_queue_full
    );
    let ended = libtrap::ok_if_terminated(trap.end(!args.no_eos));
    r?;
    ended?;
    Ok(())
}

fn run_ebpf(
    mut probe: Probe,
    window: Duration,
    outs: &mut [Output],
    sink: &mut Sink<'_>,
) -> Result<()> {
    let mut id = 0u32;
    let mut next = Instant::now() + window;
    loop {
        while !libtrap::is_terminated() {
            let now = Instant::now();
            if now >= next {
                break;
            }
            libtrap::sleep((next - now).min(Duration::from_millis(100)));
        }
        let stopping = libtrap::is_terminated();
        let t = Instant::now();
        let w = probe.end_window()?;
        let read = t.elapsed().saturating_sub(session_probe::ebpf::GRACE);
        if !w.is_empty() {
            eprintln!(
                "Info: window {id} read from the kernel in {:.3} ms ({} sessions, {} packets; {:.0} entries/s)",
                read.as_secs_f64() * 1e3,
                w.sessions.len(),
                w.packets.len(),
                (w.sessions.len() + w.packets.len()) as f64 / read.as_secs_f64().max(1e-9)
            );
        }
        sink.window(outs, &w, id)
            .or_else(|e| ok_on_stop(e, stopping))?;
        if stopping {
            return Ok(());
        }
        id = id.wrapping_add(1);
        next += window;
    }
}

/// While stopping, a send refused for termination is not an error.
fn ok_on_stop(e: TrapError, stopping: bool) -> Result<(), TrapError> {
    if stopping && matches!(e, TrapError::Terminated) {
        Ok(())
    } else {
        Err(e)
    }
}

enum Capture {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
}

fn open_capture(args: &Args) -> Result<Capture> {
    let cap = if let Some(file) = &args.read {
        Capture::File(
            pcap::Capture::from_file(file).map_err(|e| anyhow!("cannot read {file}: {e}"))?,
        )
    } else {
        let ifc = args.interface.as_deref().unwrap_or_default();
        let c = pcap::Capture::from_device(ifc)
            .and_then(|c| {
                c.promisc(false)
                    .immediate_mode(true)
                    .snaplen(256)
                    .buffer_size(32 << 20)
                    .timeout(100)
                    .open()
            })
            // Non-blocking, waited for with poll (see `wait`): libpcap's
            // blocking read in immediate mode never returns on a quiet link.
            .and_then(|c| c.setnonblock())
            .map_err(|e| {
                let why = e.to_string();
                let hint = if why.to_lowercase().contains("permi") {
                    " (run as root)"
                } else if why.contains("No such device") {
                    " (`ip link` lists the interfaces)"
                } else {
                    ""
                };
                anyhow!("cannot capture on {ifc}: {why}{hint}")
            })?;
        Capture::Live(c)
    };
    let link = match &cap {
        Capture::Live(c) => c.get_datalink(),
        Capture::File(c) => c.get_datalink(),
    };
    if link != pcap::Linktype::ETHERNET {
        bail!(
            "link type {} is not Ethernet: session_probe reads Ethernet frames only",
            link.get_name().unwrap_or_else(|_| link.0.to_string())
        );
    }
    Ok(cap)
}

/// Waits until the capture has a packet, at most `timeout` (less when a
/// signal comes).
fn wait_readable(c: &pcap::Capture<pcap::Active>, timeout: Duration) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(c.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(anyhow!("waiting for packets: {e}")),
    }
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn run_userspace(
    args: &Args,
    sizes: Sizes,
    window: Duration,
    outs: &mut [Output],
    sink: &mut Sink<'_>,
) -> Result<()> {
    let mut cap = open_capture(args)?;
    let live = matches!(cap, Capture::Live(_));
    if live {
        eprintln!(
            "Info: probing {} (libpcap, user space)",
            args.interface.as_deref().unwrap_or_default()
        );
    }
    let mut buf = DoubleBuffer::new(sizes);
    let mut win = Windower::new(window.as_nanos() as u64);
    loop {
        if libtrap::is_terminated() {
            break;
        }
        let next = match &mut cap {
            Capture::Live(c) => c.next_packet(),
            Capture::File(c) => c.next_packet(),
        };
        match next {
            Ok(pkt) => {
                let h = pkt.header;
                let ts = (h.ts.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(h.ts.tv_usec as u64 * 1000);
                while let Some(id) = win.due(ts) {
                    sink.window(outs, &buf.end_window(), id)?;
                }
                if let Some(p) = parse_ethernet(pkt.data, h.len, ts) {
                    buf.packet(&p);
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                if let Capture::Live(c) = &cap {
                    wait_readable(c, Duration::from_millis(100))?;
                }
                // Live: close windows on the clock the packets carry.
                if live && win.started() {
                    while let Some(id) = win.due(wall_ns()) {
                        sink.window(outs, &buf.end_window(), id)?;
                    }
                }
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(e).context("capture failed"),
        }
    }
    if win.started() {
        let stopping = libtrap::is_terminated();
        sink.window(outs, &buf.end_window(), win.current())
            .or_else(|e| ok_on_stop(e, stopping))?;
    }
    if let Capture::Live(c) = &mut cap {
        if let Ok(s) = c.stats() {
            if s.dropped > 0 || s.if_dropped > 0 {
                eprintln!(
                    "Warning: libpcap dropped {} packets ({} by the interface): the features miss them",
                    s.dropped, s.if_dropped
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("session_probe");
    module::start("session_probe", &args.trap);
    module::exit_status(run(&args))
}
