//! packet_capture — raw frames from a live interface or a pcap file as
//! UniRec packet records (the Traffic Snooper's source).

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{Trap, TrapError};
use packet_capture::{PacketEncoder, PACKET_SPEC};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unirec::UrTime;

/// Reads every frame of a live interface (promiscuous, all protocols; a
/// switch's mirror port needs no address) or of a pcap file, and sends one
/// UniRec packet record per frame:
/// `time TIME, uint16 LINK, uint32 WIRE_LEN, uint32 CAP_LEN, uint64 PKT_HASH, bytes PACKET`
/// (PKT_HASH: xxh64 of the captured bytes). The kernel's received/dropped
/// counters of a live capture are on the service interface
/// (`"counters": {"kernel_received", "kernel_dropped", "interface_dropped"}`).
/// On SIGINT/SIGTERM (or at the end of the file) it sends end of stream.
#[derive(Parser, Debug)]
#[command(
    name = "packet_capture",
    version,
    after_help = "Interfaces: 0 inputs, 1 output. Run `packet_capture -h trap` for the -i syntax.\n\
Live capture needs root or: setcap cap_net_raw,cap_net_admin+eip $(command -v packet_capture)\n\
Examples: packet_capture -I eth1 -i u:snoop\n          packet_capture -r traffic.pcap -f 'host 198.51.100.7' -i f:packets.trapcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Capture live on this network interface.
    #[arg(short = 'I', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// Read this pcap (or pcapng) file instead.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<String>,
    /// BPF filter expression (libpcap syntax).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    filter: Option<String>,
    /// Bytes kept of each frame (1-65000: a record holds at most 65535 bytes).
    #[arg(short = 's', long = "snaplen", default_value_t = 65000,
          value_parser = clap::value_parser!(u32).range(1..=65000))]
    snaplen: u32,
    /// The LINK value of every record (which mirror port this is).
    #[arg(short = 'L', long = "link", default_value_t = 1)]
    link: u16,
    /// Kernel capture buffer in MiB (live only).
    #[arg(short = 'B', long = "buffer-size", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    buffer_mib: u32,
    /// Do not put the interface into promiscuous mode.
    #[arg(long = "no-promisc")]
    no_promisc: bool,
    /// Stop after this many packets.
    #[arg(short = 'c', long = "count")]
    count: Option<u64>,
    /// Do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eos: bool,
}

enum Source {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
}

/// libpcap's reason a live capture cannot start, with what to do about it.
fn capture_error(ifc: &str, e: &pcap::Error) -> anyhow::Error {
    let why = match e {
        pcap::Error::PcapError(s) => s.clone(),
        e => e.to_string(),
    };
    let lower = why.to_lowercase();
    let hint = if lower.contains("permission") || lower.contains("not permitted") {
        " (run as root, or: setcap cap_net_raw,cap_net_admin+eip $(command -v packet_capture))"
            .to_string()
    } else if lower.contains("no such device") {
        " (`ip link` lists the interfaces)".into()
    } else if lower.contains("not up") {
        format!(" (bring it up: ip link set {ifc} up)")
    } else {
        String::new()
    };
    anyhow!("cannot capture on {ifc}: {why}{hint}")
}

fn open_source(args: &Args) -> Result<Source> {
    let mut src = match (&args.interface, &args.read) {
        (Some(_), Some(_)) => bail!("give either -I IFACE or -r FILE, not both"),
        (None, None) => bail!("give -I IFACE to capture live or -r FILE to read a capture"),
        (Some(ifc), None) => {
            let cap = pcap::Capture::from_device(ifc.as_str())
                .and_then(|c| {
                    c.promisc(!args.no_promisc)
                        .immediate_mode(true)
                        .snaplen(args.snaplen as i32)
                        .buffer_size((args.buffer_mib << 20) as i32)
                        .timeout(100)
                        .open()
                })
                .and_then(|c| c.setnonblock())
                .map_err(|e| capture_error(ifc, &e))?;
            Source::Live(cap)
        }
        (None, Some(file)) => Source::File(
            pcap::Capture::from_file(file).map_err(|e| anyhow!("cannot read {file}: {e}"))?,
        ),
    };
    let dlt = match &src {
        Source::Live(c) => c.get_datalink(),
        Source::File(c) => c.get_datalink(),
    };
    if dlt != pcap::Linktype::ETHERNET {
        bail!(
            "link type {} is not Ethernet: packet records carry Ethernet frames (capture on an Ethernet interface)",
            dlt.get_name().unwrap_or_else(|_| dlt.0.to_string())
        );
    }
    if let Some(bpf) = &args.filter {
        match &mut src {
            Source::Live(c) => c.filter(bpf, true),
            Source::File(c) => c.filter(bpf, true),
        }
        .map_err(|e| anyhow!("bad filter `{bpf}`: {e}"))?;
    }
    Ok(src)
}

/// Waits until a live capture has a packet, at most `timeout`.
fn wait(c: &pcap::Capture<pcap::Active>, timeout: Duration) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(c.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(anyhow!("waiting for packets: {e}")),
    }
}

struct Kernel {
    received: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    ifdropped: Arc<AtomicU64>,
}

impl Kernel {
    fn update(&self, c: &mut pcap::Capture<pcap::Active>) {
        if let Ok(s) = c.stats() {
            self.received.store(u64::from(s.received), Relaxed);
            self.dropped.store(u64::from(s.dropped), Relaxed);
            self.ifdropped.store(u64::from(s.if_dropped), Relaxed);
        }
    }
}

fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    // The capture is open before the output socket appears: whoever waits
    // for the socket knows that no frame from then on is missed.
    let mut src = open_source(&args)?;
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(1))?;
    let kernel = Kernel {
        received: trap.counter("kernel_received"),
        dropped: trap.counter("kernel_dropped"),
        ifdropped: trap.counter("interface_dropped"),
    };
    let sent_counter = trap.counter("packets");
    let mut enc = PacketEncoder::new();
    let out = &mut trap.outputs()[0];
    out.set_format(libtrap::DataFormat::UniRec(PACKET_SPEC.to_string()))?;
    let mut sent = 0u64;
    let mut too_long = 0u64;
    let mut last_stats = Instant::now();
    let limit = args.count.unwrap_or(u64::MAX);
    let result: Result<()> = loop {
        if libtrap::is_terminated() || sent >= limit {
            break Ok(());
        }
        let next = match &mut src {
            Source::Live(c) => {
                if last_stats.elapsed() >= Duration::from_millis(500) {
                    kernel.update(c);
                    last_stats = Instant::now();
                }
                c.next_packet()
            }
            Source::File(c) => c.next_packet(),
        };
        let pkt = match next {
            Ok(p) => p,
            Err(pcap::Error::TimeoutExpired) => {
                if let Source::Live(c) = &src {
                    wait(c, Duration::from_millis(100))?;
                }
                continue;
            }
            Err(pcap::Error::NoMorePackets) => break Ok(()),
            Err(e) => {
                break Err(match &args.read {
                    Some(f) => anyhow!("cannot read {f}: {e} (the capture is cut or damaged)"),
                    None => anyhow!("capture failed: {e}"),
                })
            }
        };
        let h = pkt.header;
        let (secs, us) = (h.ts.tv_sec, h.ts.tv_usec);
        let time = UrTime::from_secs_micros(
            u32::try_from(secs).unwrap_or(0),
            u32::try_from(us).unwrap_or(0).min(999_999),
        );
        let rec = match enc.encode(time, args.link, h.len, pkt.data) {
            Ok(r) => r,
            Err(_) => {
                too_long += 1;
                continue;
            }
        };
        match out.send(rec) {
            Ok(()) => {
                sent += 1;
                sent_counter.store(sent, Relaxed);
            }
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => {}
            Err(e) => break Err(e.into()),
        }
    };
    if let Source::Live(c) = &mut src {
        kernel.update(c);
    }
    let ended = trap.end(!args.no_eos).context("closing the output");
    result?;
    ended?;
    let t = start.elapsed();
    eprintln!("Info: Packets sent:       {sent:>16}");
    if too_long > 0 {
        eprintln!("Info: Frames too long:    {too_long:>16}");
    }
    if args.interface.is_some() {
        eprintln!(
            "Info: Kernel received:    {:>16}",
            kernel.received.load(Relaxed)
        );
        eprintln!(
            "Info: Kernel dropped:     {:>16}",
            kernel.dropped.load(Relaxed) + kernel.ifdropped.load(Relaxed)
        );
    }
    eprintln!(
        "Info: Time elapsed:       {}.{:03}s",
        t.as_secs(),
        t.subsec_millis()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("packet_capture");
    module::start("packet_capture", &args.trap);
    module::exit_status(run(args).map_err(|e| format!("{e:#}")))
}
