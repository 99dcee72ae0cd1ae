//! flow_meter — capture packets (live or from a file) and export flow records.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use flow_meter::cache::{CacheConfig, Flow, FlowCache};
use flow_meter::export::Exporter;
use flow_meter::parser::{self, LinkType, Packet, ParseError};
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Output, Trap, TrapError};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unirec::RecordBuilder;

/// Turns packets into bidirectional flow records (UniRec), like CESNET's
/// ipfixprobe with its basic template: a flow is keyed by addresses, ports,
/// protocol and VLAN; both directions are counted in one record (_REV fields);
/// BYTES are IP lengths. Flows end on the active/inactive timeouts (packet
/// time), a SYN after FIN/RST, a full cache line, or the end of input; then an
/// end-of-stream message is sent.
#[derive(Parser, Debug)]
#[command(
    name = "flow_meter",
    version,
    after_help = "Interfaces: 1 output. Examples:\n  flow_meter -I eth0 -i u:basicflow\n  flow_meter -r capture.pcap -i f:flows.trapcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Capture live on this network interface (promiscuous, immediate mode).
    #[arg(
        short = 'I',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "read",
        required_unless_present = "read"
    )]
    interface: Option<String>,
    /// Read packets from a pcap or pcapng file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<String>,
    /// Process plugins, comma separated (available: basic, vlan).
    #[arg(
        short = 'p',
        long = "plugins",
        value_name = "LIST",
        default_value = "basic"
    )]
    plugins: String,
    /// Active and inactive timeouts in seconds, or `default`.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "ACTIVE:INACTIVE",
        default_value = "300:30"
    )]
    timeout: String,
    /// Flow cache size: 2^EXP records (4-30).
    #[arg(short = 's', long = "cache-size", value_name = "EXP", default_value_t = 17, value_parser = clap::value_parser!(u32).range(4..=30))]
    cache_size: u32,
    /// BPF filter expression (libpcap syntax).
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "BPF",
        visible_short_alias = 'F'
    )]
    filter: Option<String>,
    /// Stop after N parsed packets.
    #[arg(short = 'c', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Print SnabbWall L7Spy's statistics line on stdout (every 2 s when live, and at the end).
    #[arg(short = 'S', long = "stats")]
    stats: bool,
    /// Value of LINK_BIT_FIELD in every record.
    #[arg(short = 'L', long = "link", value_name = "N", default_value_t = 1)]
    link: u64,
    /// Value of DIR_BIT_FIELD in every record.
    #[arg(short = 'D', long = "dir", value_name = "N", default_value_t = 0)]
    dir: u8,
    /// Do not send end-of-stream at the end.
    #[arg(short = 'n', long = "no-eof")]
    no_eof: bool,
    /// Keep the two directions of a connection in separate flows.
    #[arg(long = "split-biflow")]
    split_biflow: bool,
}

/// Counters of one run.
#[derive(Default)]
struct Counts {
    seen: u64,
    parsed: u64,
    not_ip: u64,
    malformed: u64,
    bytes: u64,
    /// Bytes of the capture file consumed (pcap record headers included).
    file_bytes: u64,
    flows: u64,
}

struct Sink<'t> {
    exporter: &'t Exporter,
    builder: RecordBuilder<'t>,
    record: Vec<u8>,
}

impl Sink<'_> {
    fn send(
        &mut self,
        out: &mut Output,
        flows: &mut Vec<Flow>,
        counts: &mut Counts,
    ) -> Result<(), TrapError> {
        for f in flows.drain(..) {
            self.record.clear();
            self.exporter
                .encode(&mut self.builder, &f, &mut self.record)
                .map_err(|e| TrapError::BadSpec(format!("cannot encode a flow: {e}")))?;
            out.send(&self.record)?;
            counts.flows += 1;
        }
        Ok(())
    }
}

/// Packets from libpcap, live or offline, behind one interface.
enum Source {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
}

impl Source {
    fn next(&mut self) -> Result<pcap::Packet<'_>, pcap::Error> {
        match self {
            Source::Live(c) => c.next_packet(),
            Source::File(c) => c.next_packet(),
        }
    }
    fn datalink(&self) -> i32 {
        match self {
            Source::Live(c) => c.get_datalink().0,
            Source::File(c) => c.get_datalink().0,
        }
    }
}

fn open_source(args: &Args) -> Result<Source> {
    let mut src = match (&args.interface, &args.read) {
        (Some(ifc), _) => {
            let cap = pcap::Capture::from_device(ifc.as_str())
                .and_then(|c| {
                    c.promisc(true)
                        .immediate_mode(true)
                        .snaplen(65535)
                        .timeout(100)
                        .open()
                })
                .map_err(|e| anyhow!("cannot capture on {ifc}: {e}"))?;
            Source::Live(cap)
        }
        (None, Some(file)) => Source::File(
            pcap::Capture::from_file(file).map_err(|e| anyhow!("cannot read {file}: {e}"))?,
        ),
        (None, None) => bail!("give -I IFACE or -r FILE"),
    };
    if let Some(bpf) = &args.filter {
        match &mut src {
            Source::Live(c) => c.filter(bpf, true),
            Source::File(c) => c.filter(bpf, true),
        }
        .map_err(|e| anyhow!("bad filter `{bpf}`: {e}"))?;
    }
    Ok(src)
}

/// The output spec with HALF_WAIT for live capture unless a timeout is given:
/// a capture must not stall because nobody reads (ipfixprobe does the same).
fn output_spec(spec: &str, live: bool) -> String {
    if live && !spec.contains("timeout=") {
        format!("{spec}:timeout=HALF_WAIT")
    } else {
        spec.to_string()
    }
}

fn run(args: &Args) -> Result<()> {
    let (active, inactive) =
        flow_meter::parse_timeouts(&args.timeout).map_err(anyhow::Error::msg)?;
    let plugins = flow_meter::plugins::from_list(&args.plugins).map_err(anyhow::Error::msg)?;
    let exporter = Exporter::new(plugins, args.link, args.dir).context("flow template")?;
    let mut source = open_source(args)?;
    let dlt = source.datalink();
    let link = LinkType::from_dlt(dlt).ok_or_else(|| {
        anyhow!("unsupported link type {dlt} (supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback)")
    })?;
    let live = matches!(source, Source::Live(_));
    let mut trap = Trap::init(&output_spec(&args.trap.ifc, live), Some(0), Some(1))?;
    let out = &mut trap.outputs()[0];
    out.set_format(DataFormat::UniRec(exporter.template().spec().to_string()))?;
    let mut cache = FlowCache::new(CacheConfig {
        size_exp: args.cache_size,
        line_exp: 4,
        active,
        inactive,
        split_biflow: args.split_biflow,
    });
    let mut sink = Sink {
        exporter: &exporter,
        builder: RecordBuilder::new(exporter.template()),
        record: Vec::with_capacity(256),
    };
    let mut counts = Counts::default();
    let mut flows: Vec<Flow> = Vec::with_capacity(64);
    // Packets are parsed into a batch and handed to the cache together (see
    // FlowCache::put_batch); live capture hands each packet on at once.
    let batch_size = if live { 1 } else { 32 };
    let mut batch: Vec<Packet> = vec![Packet::default(); batch_size];
    let mut filled = 0;
    let mut input_error = None;
    let mut last_ts_sec = 0u64;
    let mut idle_since: Option<Instant> = None;
    let mut report = StatsLine::new(args.stats);
    let mut progress = Progress::new(args.read.as_deref());
    let mut done = false;
    while !done {
        if libtrap::is_terminated() || args.count.is_some_and(|c| counts.parsed >= c) {
            done = true;
        } else {
            match source.next() {
                Ok(packet) => {
                    idle_since = None;
                    counts.seen += 1;
                    counts.bytes += u64::from(packet.header.len);
                    counts.file_bytes += 16 + u64::from(packet.header.caplen);
                    let ts = &packet.header.ts;
                    let pkt = &mut batch[filled];
                    pkt.ts_us =
                        (ts.tv_sec.max(0) as u64) * 1_000_000 + ts.tv_usec.clamp(0, 999_999) as u64;
                    match parser::parse(link, packet.data, pkt) {
                        Ok(()) => {
                            counts.parsed += 1;
                            last_ts_sec = pkt.ts_us / 1_000_000;
                            filled += 1;
                        }
                        Err(ParseError::NotIp) => counts.not_ip += 1,
                        Err(ParseError::Malformed) => counts.malformed += 1,
                    }
                }
                Err(pcap::Error::NoMorePackets) => done = true,
                Err(pcap::Error::TimeoutExpired) => {
                    // Idle link: let inactive flows expire on the wall clock.
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    cache.export_expired(last_ts_sec + since.elapsed().as_secs(), &mut flows);
                }
                Err(e) => {
                    input_error = Some(e);
                    done = true;
                }
            }
        }
        if filled == batch_size || (done && filled > 0) {
            cache.put_batch(&mut batch[..filled], &mut flows);
            filled = 0;
        }
        if !flows.is_empty() {
            match sink.send(out, &mut flows, &mut counts) {
                Err(TrapError::Terminated) => break,
                r => r?,
            }
        }
        if counts.seen & 0x3ff == 0 || idle_since.is_some() {
            if live {
                report.tick(&counts, false);
            }
            progress.tick(&counts);
        }
    }
    progress.finish();
    report.tick(&counts, true);
    // Whatever was captured is exported, even after an input error.
    cache.flush_all(&mut flows);
    libtrap::ok_if_terminated(sink.send(out, &mut flows, &mut counts))?;
    trap.end(!args.no_eof)?;
    libtrap::log::info(
        0,
        &format!(
            "{} packets: {} parsed, {} not IP, {} malformed; {} flows exported",
            counts.seen, counts.parsed, counts.not_ip, counts.malformed, counts.flows
        ),
    );
    if let Some(e) = input_error {
        let what = args
            .read
            .as_deref()
            .or(args.interface.as_deref())
            .unwrap_or("input");
        bail!(
            "{what}: {e} (after {} packets; their flows were exported)",
            counts.seen
        );
    }
    Ok(())
}

/// `-S`: SnabbWall L7Spy's statistics line on stdout, every 2 s while
/// capturing live and once at the end: the bytes and packets of the period
/// and their rates (which L7Spy prints in millions per second; kept so).
struct StatsLine {
    on: bool,
    start: Instant,
    bytes: u64,
    packets: u64,
}

impl StatsLine {
    fn new(on: bool) -> StatsLine {
        StatsLine {
            on,
            start: Instant::now(),
            bytes: 0,
            packets: 0,
        }
    }

    /// Prints when the period is over (`force`: now).
    fn tick(&mut self, c: &Counts, force: bool) {
        if !self.on || (!force && self.start.elapsed() < Duration::from_secs(2)) {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let (bytes, packets) = (c.bytes - self.bytes, c.seen - self.packets);
        println!(
            "=== {} === {bytes} Bytes, {packets} packets, {:.3} B/s, {:.3} PPS",
            chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%z"),
            bytes as f64 / secs / 1e6,
            packets as f64 / secs / 1e6
        );
        self.start = Instant::now();
        self.bytes = c.bytes;
        self.packets = c.seen;
    }
}

/// A progress line on stderr while reading a file, when stderr is a terminal.
struct Progress {
    total: Option<u64>,
    last: Instant,
}

impl Progress {
    fn new(file: Option<&str>) -> Progress {
        use std::io::IsTerminal;
        let total = file
            .filter(|_| std::io::stderr().is_terminal())
            .and_then(|f| std::fs::metadata(f).ok())
            .map(|m| m.len().max(1));
        Progress {
            total,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, c: &Counts) {
        let Some(total) = self.total else { return };
        if self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let done = c.file_bytes.min(total);
        eprint!(
            "\r{:5.1}% {} of {} MB, {} packets, {} flows ",
            done as f64 * 100.0 / total as f64,
            done >> 20,
            total >> 20,
            c.seen,
            c.flows
        );
    }

    fn finish(&self) {
        if self.total.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

fn main() -> ExitCode {
    module::handle_trap_help();
    let args = Args::parse();
    module::start("flow_meter", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
