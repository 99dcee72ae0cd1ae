//! flow_meter — capture packets (live or from a file) and export flow records.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use flow_meter::cache::{CacheConfig, FlowCache, FlowRecord};
use flow_meter::export::{self, Exporter};
use flow_meter::parser::{self, LinkType, Packet, ParseError};
use flow_meter::pcapfile::PcapReader;
use flow_meter::plugins::app::{self, App};
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Output, Trap, TrapError};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unirec::RecordBuilder;

/// Turns packets into bidirectional flow records (UniRec), like CESNET's
/// ipfixprobe with its basic template: a flow is keyed by addresses, ports,
/// protocol and VLAN; both directions are counted in one record (_REV fields);
/// BYTES are IP lengths. Flows end on the active/inactive timeouts (packet
/// time; live, inactive flows also leave on the wall clock while the link is
/// quiet), a SYN after FIN/RST, a full cache line, or the end of input or
/// SIGINT/SIGTERM; then an end-of-stream message is sent.
#[derive(Parser, Debug)]
#[command(
    name = "flow_meter",
    version,
    after_help = "Interfaces: 1 output. Examples:\n  flow_meter -I eth0 -i u:basicflow\n  flow_meter -r capture.pcap -i f:flows.trapcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Capture live on this network interface (promiscuous, immediate mode;
    /// root or CAP_NET_RAW and CAP_NET_ADMIN).
    #[arg(short = 'I', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// Read packets from a pcap or pcapng file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<String>,
    /// Process plugins: `-p http -p dns`, `-p http,dns`, with options
    /// `-p "pstats;includezeroes"`; `(a,b)` groups plugins on one output
    /// interface. With several interfaces, the groups map to them in order
    /// (`-i u:a,u:b -p http,basic`); with one, all plugins share it. A plugin
    /// interface gets the flows that carry the plugin's data; `basic` gets
    /// every flow. `-p list` lists the plugins.
    #[arg(
        short = 'p',
        long = "plugins",
        value_name = "PLUGIN[;OPTS]",
        default_value = "basic",
        action = clap::ArgAction::Append
    )]
    plugins: Vec<String>,
    /// Which plugins go to which output interface, in `-p`'s grammar, one
    /// group per interface (ipfixprobe's `p=`): `http,(pstats,phists),basic`.
    #[arg(long = "map", value_name = "GROUPS")]
    map: Option<String>,
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
    /// Print SnabbWall L7Spy's statistics line on stdout: bytes, packets, B/s
    /// and packets/s, every 2 s when live (also with no traffic) and at the end.
    #[arg(short = 'S', long = "stats")]
    stats: bool,
    /// SnabbWall L7Spy's spy view on stdout: the application of every flow
    /// (`HASH PACKETSp SRC:PORT - DST:PORT APP[:MASTER]`), all at the end
    /// with -r, each as it is identified (or exported unidentified) with -I.
    /// Runs the `app` plugin (its fields go to a TRAP interface only where
    /// -p names `app`); -i becomes optional.
    #[arg(long = "l7")]
    l7: bool,
    /// Value of LINK_BIT_FIELD in every record.
    #[arg(short = 'L', long = "link", value_name = "N", default_value_t = 1)]
    link: u64,
    /// Value of DIR_BIT_FIELD in every record.
    #[arg(short = 'D', long = "dir", value_name = "N", default_value_t = 0)]
    dir: u8,
    /// Do not send end-of-stream at the end.
    #[arg(short = 'n', long = "no-eos", alias = "no-eof")]
    no_eos: bool,
    /// Keep the two directions of a connection in separate flows.
    #[arg(long = "split-biflow")]
    split_biflow: bool,
    /// Export IPFIX to this collector (`HOST:PORT`, `[V6]:PORT`), TCP unless
    /// -u; with or without -i (without, no UniRec output).
    #[arg(short = 'x', long = "ipfix", value_name = "HOST:PORT")]
    ipfix: Option<String>,
    /// IPFIX over UDP (templates sent again every --template-refresh s).
    #[arg(short = 'u', long = "udp", requires = "ipfix")]
    udp: bool,
    /// Largest IPFIX message, bytes (ipfixprobe's default).
    #[arg(long = "mtu", value_name = "BYTES", default_value_t = flow_meter::ipfix::DEFAULT_MTU as u16,
          value_parser = clap::value_parser!(u16).range(256..), requires = "ipfix")]
    mtu: u16,
    /// IPFIX observation domain id.
    #[arg(long = "odid", value_name = "N", default_value_t = flow_meter::ipfix::DEFAULT_ODID, requires = "ipfix")]
    odid: u32,
    /// Seconds between template refreshes over UDP (0: never).
    #[arg(long = "template-refresh", value_name = "SECS",
          default_value_t = flow_meter::ipfix::DEFAULT_TEMPLATE_REFRESH, requires = "ipfix")]
    template_refresh: u64,
    /// Set when -i was not given (-x or --l7 alone): no UniRec output.
    #[arg(skip)]
    no_unirec: bool,
}

/// The IPFIX output: messages built from the flows and their collector.
struct IpfixOut {
    enc: flow_meter::ipfix::Encoder,
    sender: flow_meter::ipfix::net::Sender,
}

impl IpfixOut {
    fn add(&mut self, f: &FlowRecord) {
        let now = wall_clock_us() / 1_000_000;
        self.enc.add(f, now);
        self.sender.send_ready(&mut self.enc, now);
    }

    fn flush(&mut self) {
        let now = wall_clock_us() / 1_000_000;
        self.enc.flush(now);
        self.sender.send_ready(&mut self.enc, now);
    }
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

/// How long a live capture waits for packets before it looks at the clock
/// (expiry, `-S`, SIGINT/SIGTERM).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// One output interface's encoder.
struct Sink<'t> {
    exporter: &'t Exporter,
    builder: RecordBuilder<'t>,
    record: Vec<u8>,
}

/// `--l7`: the spy view's lines.
struct Spy {
    on: bool,
    live: bool,
    /// The app plugin's index.
    plugin: usize,
    /// Batch: the lines of the exported flows, printed at the end.
    lines: Vec<String>,
}

impl Spy {
    /// A flow leaves the cache: its line (batch, or live when it was not
    /// shown at identification).
    fn exported(&mut self, f: &FlowRecord) {
        if !self.on {
            return;
        }
        let ext = f
            .exts
            .iter()
            .filter(|e| usize::from(e.plugin) == self.plugin)
            .find_map(|e| (e.data.as_ref() as &dyn std::any::Any).downcast_ref::<app::AppExt>());
        if self.live && ext.is_some_and(|e| e.reported) {
            return;
        }
        let info = ext.map(|e| e.info().clone()).unwrap_or_default();
        let line = app::l7_line(&f.flow, &info);
        if self.live {
            println!("{line}");
        } else {
            self.lines.push(line);
        }
    }

    /// Live: the flows the app plugin named since the last call.
    fn identified(&mut self, cache: &mut FlowCache) {
        if !(self.on && self.live) {
            return;
        }
        if let Some(app) = cache.plugins_mut().find_mut::<App>() {
            for i in app.take_identified() {
                println!("{}", app::l7_line(&i.flow, &i.info));
            }
        }
    }

    /// Batch: every flow's line, at the end.
    fn finish(&mut self) {
        for line in self.lines.drain(..) {
            println!("{line}");
        }
    }
}

/// Sends exported flows to every output interface that takes them.
fn send_flows(
    sinks: &mut [Sink<'_>],
    outs: &mut [Output],
    ipfix: &mut Option<IpfixOut>,
    flows: &mut Vec<FlowRecord>,
    counts: &mut Counts,
    spy: &mut Spy,
) -> Result<(), TrapError> {
    for f in flows.drain(..) {
        spy.exported(&f);
        if let Some(x) = ipfix.as_mut() {
            x.add(&f);
        }
        for (sink, out) in sinks.iter_mut().zip(outs.iter_mut()) {
            let mut send_err = None;
            let r = sink
                .exporter
                .encode(&mut sink.builder, &f, &mut sink.record, |rec| {
                    out.send(rec).map_err(|e| {
                        send_err = Some(e);
                        unirec::RecordError::TooLarge(0)
                    })
                });
            if let Some(e) = send_err {
                return Err(e);
            }
            r.map_err(|e| TrapError::BadSpec(format!("cannot encode a flow: {e}")))?;
        }
        counts.flows += 1;
    }
    Ok(())
}

/// Packets from libpcap, live or offline, behind one interface.
///
/// A live capture is non-blocking (`TimeoutExpired`: no packet waiting) and
/// waits in [`Source::wait`]: libpcap's own blocking read (1.10, immediate
/// mode) retries its poll on timeouts and signals and never returns on a
/// quiet link, which would stop expiry, `-S` and SIGINT.
enum Source {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
    /// A classic pcap file read from its memory map.
    Mapped(MappedFile),
}

struct MappedFile {
    map: memmap2::Mmap,
    reader: PcapReader,
    /// The header of the packet last returned (libpcap's shape).
    header: pcap::PacketHeader,
    /// Where the pages not yet given back start (see [`MappedFile::next`]).
    kept_from: usize,
}

/// Read pages are given back in steps of this many bytes.
const RELEASE_STEP: usize = 4 << 20;

impl MappedFile {
    /// `path` as a memory-mapped classic pcap file, or `None` when it is not
    /// a regular file, cannot be mapped or is not classic pcap (libpcap
    /// reads those, and names what is wrong with them).
    fn open(path: &str) -> Option<MappedFile> {
        let file = std::fs::File::open(path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let map = map_file(&file)?;
        let reader = PcapReader::new(&map).filter(|r| r.dlt().is_some())?;
        // Pages are read once, in order.
        let _ = map.advise(memmap2::Advice::Sequential);
        Some(MappedFile {
            map,
            reader,
            header: pcap::PacketHeader {
                ts: nix::libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                caplen: 0,
                len: 0,
            },
            kept_from: 0,
        })
    }

    fn next(&mut self) -> Result<pcap::Packet<'_>, pcap::Error> {
        // The pages behind the reader are dropped from the process (they stay
        // in the page cache): mapped pages count as the process's memory, and
        // without this a capture's whole size would.
        let done = self.reader.position() & !(RELEASE_STEP - 1);
        if done > self.kept_from {
            release(&self.map, self.kept_from, done - self.kept_from);
            self.kept_from = done;
        }
        match self.reader.next(&self.map) {
            None => Err(pcap::Error::NoMorePackets),
            Some(Err(e)) => Err(pcap::Error::PcapError(e.to_string())),
            Some(Ok(r)) => {
                self.header = pcap::PacketHeader {
                    ts: nix::libc::timeval {
                        tv_sec: r.ts_sec.into(),
                        tv_usec: r.ts_usec.into(),
                    },
                    caplen: r.caplen,
                    len: r.len,
                };
                Ok(pcap::Packet::new(&self.header, r.data))
            }
        }
    }
}

/// A read-only, private memory map of the whole file.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> Option<memmap2::Mmap> {
    // SAFETY: the map is read-only and private, and the bytes are only ever
    // read through `PcapReader`, whose every access is bounds-checked against
    // the length mapped here. What no check can cover is another process
    // truncating the file while it is mapped (the kernel then raises SIGBUS
    // on the lost pages): a capture is not cut while it is being read, and
    // one still being written only grows (pages past the mapped length are
    // never touched).
    unsafe { memmap2::Mmap::map(file) }.ok()
}

/// Drops `len` bytes from `start` (multiples of the page size) of the map
/// from the process's memory.
#[allow(unsafe_code)]
fn release(map: &memmap2::Mmap, start: usize, len: usize) {
    // SAFETY: MADV_DONTNEED on a read-only private file mapping discards
    // only the page table entries: a later read of the range (none comes,
    // the reader only moves forward) would fault the file's bytes in again,
    // unchanged. No reference into the range outlives this call's caller
    // (records are handed on before the next read).
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len) };
}

impl Source {
    fn next(&mut self) -> Result<pcap::Packet<'_>, pcap::Error> {
        match self {
            Source::Live(c) => c.next_packet(),
            Source::File(c) => c.next_packet(),
            Source::Mapped(m) => m.next(),
        }
    }

    /// Waits until a live capture has a packet, at most `timeout` (less when a
    /// signal comes).
    fn wait(&self, timeout: Duration) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let Source::Live(c) = self else { return Ok(()) };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(c.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(anyhow!("waiting for packets: {e}")),
        }
    }

    fn datalink(&self) -> i32 {
        match self {
            Source::Live(c) => c.get_datalink().0,
            Source::File(c) => c.get_datalink().0,
            // Only files of a link type with a known DLT are mapped.
            Source::Mapped(m) => m.reader.dlt().unwrap_or(-1),
        }
    }
}

/// `-I` or `-r`, exactly one: the message when not.
fn check_input_choice(args: &Args) -> Result<(), &'static str> {
    match (&args.interface, &args.read) {
        (Some(_), Some(_)) => Err("give either -I IFACE or -r FILE, not both"),
        (None, None) => Err("give -I IFACE to capture live or -r FILE to read a capture"),
        _ => Ok(()),
    }
}

/// libpcap's reason a live capture cannot start, with what to do about it.
fn capture_error(ifc: &str, e: &pcap::Error) -> anyhow::Error {
    let why = match e {
        pcap::Error::PcapError(s) => s.clone(),
        e => e.to_string(),
    };
    let lower = why.to_lowercase();
    let hint = if lower.contains("permission") || lower.contains("not permitted") {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "$(command -v flow_meter)".into());
        format!(
            " (run as root, or allow flow_meter to capture: setcap cap_net_raw,cap_net_admin+eip {exe})"
        )
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
        (Some(ifc), _) => {
            let cap = pcap::Capture::from_device(ifc.as_str())
                .and_then(|c| {
                    c.promisc(true)
                        .immediate_mode(true)
                        .snaplen(65535)
                        .timeout(100)
                        .open()
                })
                .and_then(|c| c.setnonblock())
                .map_err(|e| capture_error(ifc, &e))?;
            Source::Live(cap)
        }
        (None, Some(file)) => match MappedFile::open(file).filter(|_| args.filter.is_none()) {
            Some(m) => Source::Mapped(m),
            None => Source::File(
                pcap::Capture::from_file(file).map_err(|e| anyhow!("cannot read {file}: {e}"))?,
            ),
        },
        (None, None) => bail!(check_input_choice(args).err().unwrap_or("no input")),
    };
    if let Some(bpf) = &args.filter {
        match &mut src {
            Source::Live(c) => c.filter(bpf, true),
            Source::File(c) => c.filter(bpf, true),
            // Never with a filter (see above).
            Source::Mapped(_) => Ok(()),
        }
        .map_err(|e| anyhow!("bad filter `{bpf}`: {e}"))?;
    }
    Ok(src)
}

/// The output spec with HALF_WAIT on every interface of a live capture that
/// gives no timeout: a capture must not stall because nobody reads
/// (ipfixprobe does the same).
fn output_spec(spec: &str, live: bool) -> String {
    if !live {
        return spec.to_string();
    }
    spec.split(',')
        .map(|ifc| {
            if ifc.contains("timeout=") {
                ifc.to_string()
            } else {
                format!("{ifc}:timeout=HALF_WAIT")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn run(args: &Args) -> Result<()> {
    let (active, inactive) =
        flow_meter::parse_timeouts(&args.timeout).map_err(anyhow::Error::msg)?;
    let mut plugins = flow_meter::plugins::from_specs(&args.plugins).map_err(anyhow::Error::msg)?;
    // --l7 runs the app plugin; added here, its fields go to no TRAP
    // interface the -p groups did not give it.
    let implied_app = args.l7 && plugins.index_of("app").is_none();
    if implied_app {
        let mut specs = args.plugins.clone();
        specs.push("app".into());
        plugins = flow_meter::plugins::from_specs(&specs).map_err(anyhow::Error::msg)?;
    }
    let n_outputs = libtrap::spec::parse(&args.trap.ifc)?.len().max(1);
    let mut groups = export::mapping(&args.plugins, args.map.as_deref(), &plugins, n_outputs)
        .map_err(anyhow::Error::msg)?;
    let app_index = plugins.index_of("app").unwrap_or(usize::MAX);
    if implied_app {
        for g in &mut groups {
            if let export::Group::Plugins(members) = g {
                members.retain(|&i| i != app_index);
                if members.is_empty() {
                    *g = export::Group::Basic;
                }
            }
        }
    }
    let exporters = groups
        .iter()
        .map(|g| Exporter::new(&plugins, g, args.link, args.dir))
        .collect::<Result<Vec<_>, _>>()
        .context("flow template")?;
    let keep_payload = plugins.needs_payload();
    let keep_l3 = plugins.needs_l3();
    let mut source = open_source(args)?;
    let dlt = source.datalink();
    let link = LinkType::from_dlt(dlt).ok_or_else(|| {
        anyhow!("unsupported link type {dlt} (supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback)")
    })?;
    let live = matches!(source, Source::Live(_));
    let mut trap = Trap::init(&output_spec(&args.trap.ifc, live), Some(0), Some(n_outputs))?;
    let outs = trap.outputs();
    for (out, e) in outs.iter_mut().zip(&exporters) {
        out.set_format(DataFormat::UniRec(e.template().spec().to_string()))?;
    }
    let mut cache = FlowCache::with_plugins(
        CacheConfig {
            size_exp: args.cache_size,
            line_exp: 4,
            active,
            inactive,
            split_biflow: args.split_biflow,
        },
        plugins,
    );
    let mut spy = Spy {
        on: args.l7,
        live,
        plugin: app_index,
        lines: Vec::new(),
    };
    if spy.on && live {
        if let Some(app) = cache.plugins_mut().find_mut::<App>() {
            app.enable_spy();
        }
    }
    let mut ipfix = match &args.ipfix {
        Some(target) => Some(IpfixOut {
            enc: flow_meter::ipfix::Encoder::new(
                cache.plugins(),
                flow_meter::ipfix::Config {
                    mtu: usize::from(args.mtu),
                    odid: args.odid,
                    dir: u32::from(args.dir),
                    template_refresh: if args.udp { args.template_refresh } else { 0 },
                },
            ),
            sender: flow_meter::ipfix::net::Sender::new(target, args.udp)
                .map_err(anyhow::Error::msg)?,
        }),
        None => None,
    };
    let mut sinks: Vec<Sink> = exporters
        .iter()
        .take(if args.no_unirec { 0 } else { usize::MAX })
        .map(|e| Sink {
            exporter: e,
            builder: RecordBuilder::new(e.template()),
            record: Vec::with_capacity(256),
        })
        .collect();
    let mut counts = Counts::default();
    let mut flows: Vec<FlowRecord> = Vec::with_capacity(64);
    // Packets are parsed into a batch and handed to the cache together (see
    // FlowCache::put_batch); live capture hands each packet on at once.
    let batch_size = if live { 1 } else { 32 };
    let mut batch: Vec<Packet> = vec![Packet::default(); batch_size];
    let mut filled = 0;
    let mut input_error = None;
    let mut report = StatsLine::new(args.stats);
    let mut progress = Progress::new(args.read.as_deref());
    let mut done = false;
    // Live: flows sent since the output was last flushed.
    let mut unflushed = false;
    while !done {
        let mut idle = false;
        if libtrap::is_terminated() || args.count.is_some_and(|c| counts.parsed >= c) {
            done = true;
        } else {
            match source.next() {
                Ok(packet) => {
                    counts.seen += 1;
                    counts.bytes += u64::from(packet.header.len);
                    counts.file_bytes += 16 + u64::from(packet.header.caplen);
                    let ts = &packet.header.ts;
                    let pkt = &mut batch[filled];
                    pkt.ts_us =
                        (ts.tv_sec.max(0) as u64) * 1_000_000 + ts.tv_usec.clamp(0, 999_999) as u64;
                    match parser::parse(link, packet.data, pkt) {
                        Ok(()) => {
                            pkt.packet_len_wire = packet.header.len.min(u32::from(u16::MAX)) as u16;
                            if keep_payload {
                                pkt.keep_payload(packet.data);
                            }
                            if keep_l3 {
                                pkt.keep_l3(packet.data);
                            }
                            counts.parsed += 1;
                            filled += 1;
                        }
                        Err(ParseError::NotIp) => counts.not_ip += 1,
                        Err(ParseError::Malformed) => counts.malformed += 1,
                    }
                }
                Err(pcap::Error::NoMorePackets) => done = true,
                // Live: no packet waiting.
                Err(pcap::Error::TimeoutExpired) => idle = true,
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
        if live {
            // Inactive flows leave on the wall clock, also on a quiet link.
            cache.sweep(wall_clock_us(), &mut flows);
            spy.identified(&mut cache);
            report.tick(&counts, false);
        }
        if !flows.is_empty() {
            match send_flows(
                &mut sinks,
                outs,
                &mut ipfix,
                &mut flows,
                &mut counts,
                &mut spy,
            ) {
                Err(TrapError::Terminated) => break,
                r => r?,
            }
            unflushed = live;
        }
        if idle {
            // A quiet moment: pass on what was exported now, not at the
            // output's autoflush, then wait for packets.
            if unflushed {
                if let Some(x) = ipfix.as_mut() {
                    x.flush();
                }
                match outs.iter_mut().try_for_each(Output::flush) {
                    Err(TrapError::Terminated) => break,
                    r => r?,
                }
                unflushed = false;
            }
            source.wait(report.until_due().min(IDLE_WAIT))?;
        } else if counts.seen & 0x3ff == 0 {
            progress.tick(&counts);
        }
    }
    progress.finish();
    // Whatever was captured is exported, even after an input error.
    cache.flush_all(&mut flows);
    spy.identified(&mut cache);
    libtrap::ok_if_terminated(send_flows(
        &mut sinks,
        outs,
        &mut ipfix,
        &mut flows,
        &mut counts,
        &mut spy,
    ))?;
    // L7Spy prints its flows, then the statistics line.
    spy.finish();
    report.tick(&counts, true);
    trap.end(!args.no_eos)?;
    let mut ipfix_dropped = 0;
    if let Some(x) = ipfix.as_mut() {
        x.sender.retry_now();
        x.flush();
        let s = &x.sender;
        libtrap::log::info(
            0,
            &format!(
                "IPFIX: {} records in {} messages sent, {} dropped, {} too large, {} reconnections",
                s.sent_records, s.sent_messages, s.dropped, x.enc.oversized, s.reconnects
            ),
        );
        ipfix_dropped = s.dropped + x.enc.oversized;
    }
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
    if ipfix_dropped > 0 {
        bail!(
            "IPFIX: {ipfix_dropped} records were not delivered to {} (collector unreachable or records larger than --mtu)",
            args.ipfix.as_deref().unwrap_or("the collector")
        );
    }
    Ok(())
}

/// Microseconds since the epoch, by the system clock (the clock of live
/// packets' timestamps).
fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `-S`: SnabbWall L7Spy's statistics line on stdout, every 2 s while
/// capturing live (also when nothing arrives) and once at the end: the bytes
/// and packets of the period and their rates in plain units, as L7Spy prints
/// them (`=== TIME === 71866 Bytes, 99 packets, 35933.272 B/s, 49.500 PPS`).
struct StatsLine {
    on: bool,
    start: Instant,
    due: Instant,
    bytes: u64,
    packets: u64,
}

/// How often `-S` prints while capturing live.
const STATS_EVERY: Duration = Duration::from_secs(2);

impl StatsLine {
    fn new(on: bool) -> StatsLine {
        let start = Instant::now();
        StatsLine {
            on,
            start,
            due: start + STATS_EVERY,
            bytes: 0,
            packets: 0,
        }
    }

    /// Time left until the next line (forever when off).
    fn until_due(&self) -> Duration {
        if self.on {
            self.due.saturating_duration_since(Instant::now())
        } else {
            Duration::MAX
        }
    }

    /// Prints when the period is over (`force`: now).
    fn tick(&mut self, c: &Counts, force: bool) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if !force && now < self.due {
            return;
        }
        let secs = now.duration_since(self.start).as_secs_f64();
        let (bytes, packets) = (c.bytes - self.bytes, c.seen - self.packets);
        println!(
            "=== {} === {}",
            chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%z"),
            stats_text(bytes, packets, secs)
        );
        self.start = now;
        // The next line 2 s after this one was due: no drift.
        self.due = (self.due + STATS_EVERY).max(now);
        self.bytes = c.bytes;
        self.packets = c.seen;
    }
}

/// L7Spy's counts and rates: `71866 Bytes, 99 packets, 35933.272 B/s, 49.500 PPS`.
fn stats_text(bytes: u64, packets: u64, secs: f64) -> String {
    let secs = secs.max(1e-9);
    format!(
        "{bytes} Bytes, {packets} packets, {:.3} B/s, {:.3} PPS",
        bytes as f64 / secs,
        packets as f64 / secs
    )
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
    // `-p list` needs no interface: answered before the arguments are checked.
    let argv: Vec<String> = std::env::args().collect();
    if argv
        .windows(2)
        .any(|w| matches!(w[0].as_str(), "-p" | "--plugins") && w[1] == "list")
        || argv.iter().any(|a| a == "--plugins=list")
    {
        for (name, fields) in flow_meter::plugins::describe() {
            println!("{name:<12} {fields}");
        }
        return ExitCode::SUCCESS;
    }
    // -x or --l7 alone: no UniRec output (a blackhole interface stands in
    // for -i).
    let ipfix_only = argv.iter().any(|a| {
        a == "-x" || a.starts_with("--ipfix") || (a.starts_with("-x") && a.len() > 2) || a == "--l7"
    }) && !argv.iter().any(|a| a.starts_with("-i"));
    let mut args: Args = if ipfix_only {
        module::parse_args_from(
            "flow_meter",
            argv.iter().cloned().chain(["-i".into(), "b:".into()]),
        )
    } else {
        module::parse_args("flow_meter")
    };
    args.no_unirec = ipfix_only;
    if let Err(why) = check_input_choice(&args) {
        // A usage error, with clap's exit status.
        eprintln!("flow_meter: error: {why}");
        return ExitCode::from(2);
    }
    module::start("flow_meter", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_in_plain_units_as_l7spy_prints_them() {
        // L7Spy's example line: 71866 Bytes and 99 packets in its 2 s period.
        assert_eq!(
            stats_text(71866, 99, 71866.0 / 35933.272),
            "71866 Bytes, 99 packets, 35933.272 B/s, 49.500 PPS"
        );
        assert_eq!(
            stats_text(0, 0, 2.0),
            "0 Bytes, 0 packets, 0.000 B/s, 0.000 PPS"
        );
    }
}
