//! ipfixcol — IPFIX / NetFlow v9 / v5 collector: flows from probes and
//! routers become UniRec records on TRAP outputs (NEMEA's ipfixcol2 with
//! its UniRec output plugin, as one module).

use anyhow::{bail, Context, Result};
use clap::Parser;
use ipfixcol::collector::{
    Collector, Config, Origin, OutputFields, SessionId, Sink, Stats, Transport,
};
use ipfixcol::config;
use ipfixcol::mapping::Mapping;
use ipfixcol::wire::ipfix_length;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Output, Trap};
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Receives IPFIX (RFC 7011) over UDP and TCP, NetFlow v9 and v5 over UDP,
/// and IPFIX files, and sends each flow record as UniRec on the output
/// interfaces. Templates are kept per exporter session and observation
/// domain; UDP templates expire after their lifetime of export time;
/// sequence gaps are counted as lost. Field names and conversions are
/// ipfixcol2's (`unirec-elements.txt`), plus every flow_meter plugin field
/// under ipfixprobe's element numbers.
#[derive(Parser, Debug)]
#[command(
    name = "ipfixcol",
    version,
    after_help = "Interfaces: 0 inputs, 1 or more outputs (one per -F list). Run `ipfixcol -h trap` for the -i syntax.\n\
Examples:\n  ipfixcol -i u:flows --udp 4739\n  ipfixcol -i u:flows --tcp 4739 -F 'SRC_IP,DST_IP,?SRC_PORT,?DST_PORT,PROTOCOL,PACKETS,BYTES,TIME_FIRST,TIME_LAST'\n  ipfixcol -c /etc/ipfixcol2/startup.xml"
)]
struct Args {
    /// Output interfaces, separated by `,` (u:NAME, f:FILE, t:PORT,
    /// T:PORT:KEY:CERT:CA, b:); `-h trap` for the syntax. With -c, the
    /// XML's outputs by default.
    #[arg(short = 'i', value_name = "IFC_SPEC")]
    ifc: Option<String>,
    /// More messages on stderr (-v, -vv, -vvv).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Listen for IPFIX / NetFlow v9 / v5 on UDP `[HOST:]PORT` (repeatable).
    #[arg(long = "udp", value_name = "[HOST:]PORT")]
    udp: Vec<String>,
    /// Listen for IPFIX on TCP `[HOST:]PORT` (repeatable).
    #[arg(long = "tcp", value_name = "[HOST:]PORT")]
    tcp: Vec<String>,
    /// Read a file of IPFIX messages (repeatable); without listeners the
    /// module ends after the last file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    files: Vec<String>,
    /// UniRec fields of an output, ipfixcol2's uniRecFormat
    /// (`SRC_IP,DST_IP,?SRC_PORT`: `?` = optional, a record missing a
    /// required field is dropped); one per output interface. Without -F
    /// every output gets the fields the exporters' templates carry.
    #[arg(short = 'F', long = "fields", value_name = "FIELDS")]
    fields: Vec<String>,
    /// ipfixcol2's startup XML: its udp/tcp/ipfix inputs and unirec outputs
    /// (their TRAP interfaces replace -i).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<String>,
    /// Split biflow records into two uniflow records (ipfixcol2's
    /// splitBiflow; with -c the XML's value, default true there).
    #[arg(long = "split-biflow")]
    split_biflow: bool,
    /// Seconds of export time a UDP template lives without a refresh.
    #[arg(long = "template-lifetime", value_name = "S", default_value_t = ipfixcol::collector::DEFAULT_TEMPLATE_LIFETIME)]
    template_lifetime: u64,
    /// The same for options templates.
    #[arg(long = "options-template-lifetime", value_name = "S", default_value_t = ipfixcol::collector::DEFAULT_OPTIONS_LIFETIME)]
    options_lifetime: u64,
    /// Print the UniRec fields -F knows (name and type) and exit.
    #[arg(long = "list-fields")]
    list_fields: bool,
}

/// Messages travel to the converting thread in batches: one channel
/// operation per message showed as lock contention in the profile.
const BATCH: usize = 64;

/// Messages of one reader in one buffer: one allocation per batch, not one
/// per message.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    msgs: Vec<(Origin, std::ops::Range<usize>)>,
}

impl Batch {
    fn with_capacity(messages: usize, bytes: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(bytes),
            msgs: Vec::with_capacity(messages),
        }
    }

    fn push(&mut self, origin: Origin, msg: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(msg);
        self.msgs.push((origin, start..self.bytes.len()));
    }

    fn len(&self) -> usize {
        self.msgs.len()
    }

    fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (Origin, &[u8])> {
        self.msgs
            .iter()
            .map(|(o, r)| (*o, self.bytes.get(r.clone()).unwrap_or_default()))
    }
}

enum Event {
    Messages(Batch),
    Closed(SessionId),
    /// A reader thread is done (a file read to its end, or a fatal error).
    Done(Option<String>),
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

fn new_session() -> SessionId {
    SessionId(NEXT_SESSION.fetch_add(1, Relaxed))
}

/// `[HOST:]PORT` → socket addresses (HOST empty: all IPv4 and IPv6).
fn listen_addrs(spec: &str) -> Result<Vec<SocketAddr>> {
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => ("", spec),
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("{spec:?}: the port must be a number (give [HOST:]PORT)"))?;
    if host.is_empty() {
        return Ok(vec![SocketAddr::from(([0u16; 8], port))]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("{spec:?}: cannot resolve {host:?}: {e}"))?
        .collect();
    if addrs.is_empty() {
        bail!("{spec:?}: {host:?} has no address");
    }
    Ok(addrs)
}

fn udp_socket(addr: SocketAddr) -> Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = if addr.ip().is_unspecified() && addr.is_ipv6() {
        // `[::]` takes IPv4 too (dual stack), else fall back to IPv4.
        UdpSocket::bind(addr)
            .or_else(|_| UdpSocket::bind(SocketAddr::from(([0u8; 4], addr.port()))))
    } else {
        UdpSocket::bind(addr)
    }
    .map_err(|e| anyhow::anyhow!("cannot listen on UDP {addr}: {e} (another collector on that port? below 1024 needs root)"))?;
    // A large receive buffer rides out bursts while the main thread works.
    let _ = setsockopt(&sock, sockopt::RcvBuf, &(32 << 20));
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(sock)
}

fn tcp_listener(addr: SocketAddr) -> Result<TcpListener> {
    let l = if addr.ip().is_unspecified() && addr.is_ipv6() {
        TcpListener::bind(addr)
            .or_else(|_| TcpListener::bind(SocketAddr::from(([0u8; 4], addr.port()))))
    } else {
        TcpListener::bind(addr)
    }
    .map_err(|e| anyhow::anyhow!("cannot listen on TCP {addr}: {e} (another collector on that port? below 1024 needs root)"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn plain_ip(a: SocketAddr) -> IpAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    }
}

/// Datagrams taken by one `recvmmsg` call at most.
const UDP_BURST: usize = 32;

/// The sender's address of a received datagram.
fn peer_of(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

fn run_udp(sock: UdpSocket, tx: SyncSender<Event>) {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let mut sessions: std::collections::HashMap<SocketAddr, SessionId> = Default::default();
    // One buffer per datagram of a burst, each as large as a datagram can be.
    let mut bufs = vec![vec![0u8; 65536]; UDP_BURST];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BURST, None);
    let mut batch = Batch::with_capacity(BATCH, BATCH * 1500);
    let mut last: Option<(SocketAddr, SessionId)> = None;
    while !libtrap::is_terminated() {
        // Wait (100 ms at most, the socket's timeout) for the first
        // datagram, take what else is queued without waiting, in one call.
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(b.as_mut_slice())])
            .collect();
        let got = recvmmsg(
            sock.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        );
        match got {
            Ok(msgs) => {
                for m in msgs {
                    let Some(peer) = m.address.as_ref().and_then(peer_of) else {
                        continue;
                    };
                    let Some(data) = m.iovs().next() else {
                        continue;
                    };
                    let n = m.bytes.min(data.len());
                    // Most bursts come from one exporter: skip the lookup.
                    let session = match last {
                        Some((p, s)) if p == peer => s,
                        _ => {
                            if sessions.len() > 65536 {
                                sessions.clear();
                            }
                            let s = *sessions.entry(peer).or_insert_with(new_session);
                            last = Some((peer, s));
                            s
                        }
                    };
                    let origin = Origin {
                        session,
                        transport: Transport::Udp,
                        exporter: Some(plain_ip(peer)),
                    };
                    batch.push(origin, &data[..n]);
                }
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => {
                let _ = tx.send(Event::Done(Some(format!("UDP receive: {e}"))));
                return;
            }
        }
        // Send when full, or when the queue ran dry (a short burst).
        if !batch.is_empty() {
            let full = std::mem::replace(&mut batch, Batch::with_capacity(BATCH, BATCH * 1500));
            if tx.send(Event::Messages(full)).is_err() {
                return;
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes; false at a clean end of stream before
/// the first byte, an error on a stream cut in the middle.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        if libtrap::is_terminated() {
            return Ok(false);
        }
        match s.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed inside a message",
                ))
            }
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn run_tcp_connection(mut s: TcpStream, peer: SocketAddr, tx: SyncSender<Event>) {
    let session = new_session();
    let origin = Origin {
        session,
        transport: Transport::Tcp,
        exporter: Some(plain_ip(peer)),
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut head = [0u8; 4];
    loop {
        match read_full(&mut s, &mut head) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                eprintln!("ipfixcol: TCP exporter {peer}: {e}");
                break;
            }
        }
        let Some(len) = ipfix_length(&head).filter(|&l| l >= 16) else {
            eprintln!(
                "ipfixcol: TCP exporter {peer}: not an IPFIX message header (version {}); closing the connection (NetFlow v5/v9 travel over UDP: use --udp)",
                u16::from_be_bytes([head[0], head[1]])
            );
            break;
        };
        let mut batch = Batch::with_capacity(1, len);
        batch.bytes.resize(len, 0);
        batch.bytes[..4].copy_from_slice(&head);
        match read_full(&mut s, &mut batch.bytes[4..]) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                eprintln!("ipfixcol: TCP exporter {peer}: {e}");
                break;
            }
        }
        batch.msgs.push((origin, 0..len));
        if tx.send(Event::Messages(batch)).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::Closed(session));
}

fn run_tcp(l: TcpListener, tx: SyncSender<Event>) {
    while !libtrap::is_terminated() {
        match l.accept() {
            Ok((s, peer)) => {
                let _ = s.set_nonblocking(false);
                let tx = tx.clone();
                thread::spawn(move || run_tcp_connection(s, peer, tx));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(50)),
            Err(e) => eprintln!("ipfixcol: TCP accept: {e}"),
        }
    }
}

/// Reads files of concatenated IPFIX messages.
fn run_files(files: Vec<String>, tx: SyncSender<Event>) {
    for path in files {
        let session = new_session();
        let origin = Origin {
            session,
            transport: Transport::File,
            exporter: None,
        };
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Event::Done(Some(format!("cannot read {path}: {e}"))));
                return;
            }
        };
        let mut at = 0usize;
        let mut batch = Batch::with_capacity(BATCH, 0);
        while at < data.len() {
            if libtrap::is_terminated() {
                return;
            }
            let rest = &data[at..];
            let Some(len) = ipfix_length(rest).filter(|&l| l >= 16 && l <= rest.len()) else {
                // What came before the bad bytes is converted first.
                let _ = tx.send(Event::Messages(std::mem::take(&mut batch)));
                let _ = tx.send(Event::Done(Some(format!(
                    "{path}: no IPFIX message at byte {at} (a truncated or non-IPFIX file); the {at} bytes before it were read"
                ))));
                return;
            };
            batch.push(origin, &rest[..len]);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Batch::with_capacity(BATCH, 0));
                if tx.send(Event::Messages(full)).is_err() {
                    return;
                }
            }
            at += len;
        }
        if !batch.is_empty() && tx.send(Event::Messages(batch)).is_err() {
            return;
        }
        let _ = tx.send(Event::Closed(session));
    }
    let _ = tx.send(Event::Done(None));
}

struct TrapSink<'a> {
    outs: &'a mut [Output],
    err: Option<libtrap::TrapError>,
}

impl Sink for TrapSink<'_> {
    fn format(&mut self, out: usize, template: &unirec::Template) {
        if let Some(o) = self.outs.get_mut(out) {
            if let Err(e) = o.set_format(DataFormat::UniRec(template.spec().to_string())) {
                self.err.get_or_insert(e);
            }
        }
    }
    fn record(&mut self, out: usize, record: &[u8]) {
        if let Some(o) = self.outs.get_mut(out) {
            if let Err(e) = o.send(record) {
                self.err.get_or_insert(e);
            }
        }
    }
}

fn summary(s: &Stats, elapsed: Duration) {
    eprintln!(
        "ipfixcol: {} messages, {} flow records, {} sent, {} malformed, {} without template, {} lost (sequence), {} v9 packets lost, {} dropped (missing fields), {} templates, {:.2} s",
        s.messages,
        s.records,
        s.sent,
        s.malformed,
        s.no_template,
        s.lost_records,
        s.lost_packets,
        s.dropped,
        s.templates,
        elapsed.as_secs_f64()
    );
}

fn run(args: &Args) -> Result<()> {
    let mapping = Arc::new(Mapping::new());
    let mut udp = args.udp.clone();
    let mut tcp = args.tcp.clone();
    let mut files = args.files.clone();
    let mut field_specs = args.fields.clone();
    let mut ifc = args.ifc.clone();
    let mut cfg = Config {
        template_lifetime: args.template_lifetime,
        options_lifetime: args.options_lifetime,
        split_biflow: args.split_biflow,
    };
    if let Some(path) = &args.config {
        let xml = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        let st = config::parse(&xml).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        for s in &st.skipped {
            eprintln!("ipfixcol: {path}: {s} is not supported here; skipped");
        }
        udp.extend(st.udp.iter().map(|l| format!("{}:{}", l.host, l.port)));
        tcp.extend(st.tcp.iter().map(|l| format!("{}:{}", l.host, l.port)));
        for f in &st.files {
            let matched: Vec<String> = glob::glob(f)
                .map(|g| g.flatten().map(|p| p.display().to_string()).collect())
                .unwrap_or_default();
            if matched.is_empty() {
                bail!("{path}: the ipfix input's path {f:?} matches no file");
            }
            files.extend(matched);
        }
        if let Some(t) = st.template_lifetime {
            cfg.template_lifetime = t;
        }
        if let Some(t) = st.options_lifetime {
            cfg.options_lifetime = t;
        }
        if st
            .outputs
            .iter()
            .any(|o| o.split_biflow != st.outputs[0].split_biflow)
        {
            bail!("{path}: the unirec outputs disagree on splitBiflow; this collector splits all or none");
        }
        cfg.split_biflow = st.outputs[0].split_biflow;
        if ifc.is_none() {
            ifc = Some(
                st.outputs
                    .iter()
                    .map(|o| o.ifc.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        field_specs = st.outputs.iter().map(|o| o.fields.clone()).collect();
    }
    let Some(ifc) = ifc else {
        bail!("no output interface: give -i IFC_SPEC (e.g. -i u:flows) or -c FILE");
    };
    if udp.is_empty() && tcp.is_empty() && files.is_empty() {
        bail!("no input: give --udp [HOST:]PORT, --tcp [HOST:]PORT, -r FILE or -c FILE");
    }
    // Open the listeners before the outputs, so a busy port fails fast.
    let udp_socks = udp
        .iter()
        .map(|s| listen_addrs(s).and_then(|a| udp_socket(a[0])))
        .collect::<Result<Vec<_>>>()?;
    let tcp_listeners = tcp
        .iter()
        .map(|s| listen_addrs(s).and_then(|a| tcp_listener(a[0])))
        .collect::<Result<Vec<_>>>()?;
    let mut trap = Trap::init(&ifc, Some(0), None)?;
    let n_out = trap.outputs().len();
    let outputs = if field_specs.is_empty() {
        vec![OutputFields::Dynamic; n_out]
    } else {
        if field_specs.len() != n_out {
            bail!(
                "{} field lists (-F) for {} output interfaces: give one -F per interface, or none",
                field_specs.len(),
                n_out
            );
        }
        field_specs
            .iter()
            .map(|f| OutputFields::parse(f, &mapping).map_err(|e| anyhow::anyhow!("-F {f:?}: {e}")))
            .collect::<Result<Vec<_>>>()?
    };
    let mut col = Collector::new(cfg, mapping, outputs);
    let (tx, rx): (SyncSender<Event>, Receiver<Event>) = sync_channel(256);
    let mut readers = 0usize;
    let listening = !udp_socks.is_empty() || !tcp_listeners.is_empty();
    for s in udp_socks {
        let tx = tx.clone();
        thread::spawn(move || run_udp(s, tx));
    }
    for l in tcp_listeners {
        let tx = tx.clone();
        thread::spawn(move || run_tcp(l, tx));
    }
    if !files.is_empty() {
        readers += 1;
        let tx = tx.clone();
        thread::spawn(move || run_files(files, tx));
    }
    drop(tx);
    let start = Instant::now();
    let mut fatal: Option<anyhow::Error> = None;
    {
        let mut sink = TrapSink {
            outs: trap.outputs(),
            err: None,
        };
        col.start(&mut sink)?;
        let mut logged = Instant::now();
        let mut malformed_logged = 0u64;
        while !libtrap::is_terminated() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Messages(batch)) => {
                    for (origin, msg) in batch.iter() {
                        col.process(origin, msg, &mut sink);
                    }
                }
                Ok(Event::Closed(s)) => col.close_session(s),
                Ok(Event::Done(err)) => {
                    if let Some(e) = err {
                        fatal = Some(anyhow::anyhow!(e));
                        break;
                    }
                    readers -= 1;
                    if readers == 0 && !listening {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(e) = sink.err.take() {
                if !libtrap::is_terminated() {
                    fatal = Some(e.into());
                }
                break;
            }
            // Malformed input: one line a second at most.
            if col.stats.malformed > malformed_logged && logged.elapsed() >= Duration::from_secs(1)
            {
                let why = col
                    .last_error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                eprintln!(
                    "ipfixcol: {} malformed message(s) or set(s) skipped (last: {why})",
                    col.stats.malformed - malformed_logged
                );
                malformed_logged = col.stats.malformed;
                logged = Instant::now();
            }
        }
        if col.stats.malformed > malformed_logged {
            let why = col
                .last_error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            eprintln!(
                "ipfixcol: {} malformed message(s) or set(s) skipped (last: {why})",
                col.stats.malformed - malformed_logged
            );
        }
    }
    summary(&col.stats, start.elapsed());
    let ended = trap.end(true);
    if let Some(e) = fatal {
        return Err(e);
    }
    ended?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("ipfixcol");
    if args.list_fields {
        let m = Mapping::new();
        for (name, ty) in m.fields() {
            println!("{ty} {name}");
        }
        return ExitCode::SUCCESS;
    }
    let trap = TrapArgs {
        ifc: args.ifc.clone().unwrap_or_default(),
        verbose: args.verbose,
    };
    module::start("ipfixcol", &trap);
    module::exit_status(run(&args))
}
