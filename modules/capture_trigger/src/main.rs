//! capture_trigger — full packet captures of the host pairs that
//! ipblacklistfilter flags.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use capture_trigger::{
    capture_file_name, Counters, Decision, Flagged, Limits, LocalNets, Pair, PcapWriter, Sessions,
    EVENT_SPEC,
};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use std::fs::OpenOptions;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

/// Reads ipblacklistfilter's flagged flows (SRC_IP, DST_IP, SRC_BLACKLIST,
/// DST_BLACKLIST, TIME_LAST) and, for each local host (in --local) talking
/// to a listed address, captures that pair's packets, both directions (BPF
/// `host LOCAL and host REMOTE`), from the live interface -I into
/// DIR/<time>_<local>_<remote>.pcap, for --duration seconds and/or until
/// --packets packets. At most --max-sessions captures run at once (more
/// pairs are refused and counted, not queued); a pair is not captured again
/// within --suppress seconds of its last start, by the flows' times. A
/// capture is written to NAME.pcap.part and renamed when complete; one that
/// fails (a full disk) is removed and reported. Each finished capture sends
/// an event record on the output. Service counters: active, started,
/// refused, suppressed, done, failed, and `session LOCAL REMOTE` (its
/// packets so far) for each capture running. SIGINT/SIGTERM end the captures
/// running, complete their files and send their events.
#[derive(Parser, Debug)]
#[command(
    name = "capture_trigger",
    version,
    after_help = "Interfaces: 1 input (ipblacklistfilter's output: SRC_IP, DST_IP, SRC_BLACKLIST, \
DST_BLACKLIST; TIME_LAST when present), 1 output (one record per finished capture: SRC_IP = local, \
DST_IP = listed, TIME_FIRST, TIME_LAST (first and last packet), PACKETS, BYTES, DST_BLACKLIST (the listed \
side's bitmap), FILENAME, STATUS = packets|duration|stopped|error: …).\n\
Example: capture_trigger -i u:blacklisted,u:captures -I eth0 --local 198.51.100.0/24 -d /var/capture --duration 60 --packets 10000"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Live interface to capture on.
    #[arg(short = 'I', long = "interface", value_name = "IFACE")]
    iface: String,
    /// The local networks (comma separated prefixes): a flagged flow
    /// starts a capture for its local side.
    #[arg(long = "local", value_name = "PREFIXES")]
    local: String,
    /// Directory of the capture files.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Seconds a capture lasts.
    #[arg(long = "duration", value_name = "SEC")]
    duration: Option<f64>,
    /// Packets after which a capture ends.
    #[arg(long = "packets", value_name = "N")]
    packets: Option<u64>,
    /// Captures running at once at most.
    #[arg(long = "max-sessions", value_name = "N", default_value_t = 8)]
    max_sessions: usize,
    /// Seconds (of flow time) in which a pair is not captured again.
    #[arg(long = "suppress", value_name = "SEC", default_value_t = 300)]
    suppress: u64,
    /// Bytes kept of each packet.
    #[arg(long = "snaplen", value_name = "BYTES", default_value_t = 65535)]
    snaplen: u32,
    /// Do not send the end-of-stream message at the end.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

/// What ends a capture.
#[derive(Debug, Clone, Copy)]
struct Stop {
    duration: Option<Duration>,
    packets: Option<u64>,
}

/// A capture's result.
struct Done {
    pair: Pair,
    blacklist: u64,
    first: UrTime,
    last: UrTime,
    packets: u64,
    bytes: u64,
    file: Option<PathBuf>,
    status: String,
}

fn ts_time(sec: i64, usec: i64) -> UrTime {
    UrTime::from_secs_micros(
        sec.clamp(0, i64::from(u32::MAX)) as u32,
        usec.clamp(0, 999_999) as u32,
    )
}

/// A live capture, non-blocking: libpcap's blocking read in immediate mode
/// retries its poll on timeouts and never returns on a quiet link, which
/// would hold up --duration and SIGTERM; [`wait_readable`] waits instead.
fn open_live(iface: &str, snaplen: u32) -> Result<pcap::Capture<pcap::Active>, pcap::Error> {
    pcap::Capture::from_device(iface)?
        .snaplen(snaplen.min(i32::MAX as u32) as i32)
        .immediate_mode(true)
        .timeout(100)
        .open()?
        .setnonblock()
}

/// Waits at most 100 ms for packets on the capture's descriptor.
fn wait_readable(cap: &pcap::Capture<pcap::Active>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(cap.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(100u16));
}

/// A unique path: `NAME.pcap`, else `NAME-1.pcap`, … (with suppression 0
/// the same pair may start twice in a second).
fn free_path(base: &Path) -> PathBuf {
    let mut p = base.to_path_buf();
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n = 1;
    while p.exists() || part_path(&p).exists() {
        p = base.with_file_name(format!("{stem}-{n}.pcap"));
        n += 1;
    }
    p
}

fn part_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// One capture session to run.
struct Job {
    /// The packets captured so far, on the service interface.
    progress: Arc<AtomicU64>,
    iface: String,
    snaplen: u32,
    stop: Stop,
    path: PathBuf,
    pair: Pair,
    blacklist: u64,
    start: UrTime,
}

/// One capture session, in its own thread.
fn capture(job: Job, tx: Sender<Done>) {
    let Job {
        progress,
        iface,
        snaplen,
        stop,
        path,
        pair,
        blacklist,
        start,
    } = job;
    let mut done = Done {
        pair,
        blacklist,
        first: start,
        last: start,
        packets: 0,
        bytes: 0,
        file: None,
        status: String::new(),
    };
    let part = part_path(&path);
    let result = (|| -> Result<&'static str> {
        let mut cap = open_live(&iface, snaplen)
            .map_err(|e| anyhow::anyhow!("cannot capture on {iface}: {e}"))?;
        cap.filter(&pair.filter(), true)
            .map_err(|e| anyhow::anyhow!("BPF filter {:?}: {e}", pair.filter()))?;
        let linktype = cap.get_datalink().0 as u32;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", part.display()))?;
        let write_err = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", part.display());
        let mut w = PcapWriter::new(BufWriter::new(file), linktype, snaplen).map_err(write_err)?;
        let began = Instant::now();
        let why = loop {
            if libtrap::is_terminated() {
                break "stopped";
            }
            if stop.duration.is_some_and(|d| began.elapsed() >= d) {
                break "duration";
            }
            let idle = match cap.next_packet() {
                Ok(p) => {
                    let t = ts_time(p.header.ts.tv_sec, p.header.ts.tv_usec);
                    if done.packets == 0 {
                        done.first = t;
                    }
                    done.last = t;
                    w.packet(t.secs(), t.micros(), p.header.len, p.data)
                        .map_err(write_err)?;
                    done.packets += 1;
                    progress.store(done.packets, Relaxed);
                    done.bytes += u64::from(p.header.len);
                    if stop.packets.is_some_and(|n| done.packets >= n) {
                        break "packets";
                    }
                    false
                }
                Err(pcap::Error::TimeoutExpired) => true,
                Err(e) => bail!("capture on {iface}: {e}"),
            };
            if idle {
                wait_readable(&cap);
            }
        };
        w.flush().map_err(write_err)?;
        let file = w
            .into_inner()
            .into_inner()
            .map_err(|e| write_err(e.into_error()))?;
        file.sync_all().map_err(write_err)?;
        drop(file);
        std::fs::rename(&part, &path).map_err(|e| {
            anyhow::anyhow!(
                "cannot rename {} to {}: {e}",
                part.display(),
                path.display()
            )
        })?;
        Ok(why)
    })();
    match result {
        Ok(why) => {
            done.status = why.into();
            done.file = Some(path);
        }
        Err(e) => {
            // No partial file stays: a pcap there is a complete one.
            let _ = std::fs::remove_file(&part);
            done.status = format!("error: {e:#}");
        }
    }
    let _ = tx.send(done);
}

/// The service-interface counter of a running capture: its packets.
fn session_counter(p: &Pair) -> String {
    format!("session {} {}", p.local, p.remote)
}

/// Field indices of the flagged flows.
struct Fields {
    src: usize,
    dst: usize,
    src_bl: usize,
    dst_bl: usize,
    time: Option<usize>,
}

impl Fields {
    fn new(t: &Template) -> Option<Fields> {
        use unirec::{FieldType, Scalar};
        Some(Fields {
            src: t.find_typed("SRC_IP", FieldType::Scalar(Scalar::IpAddr))?,
            dst: t.find_typed("DST_IP", FieldType::Scalar(Scalar::IpAddr))?,
            src_bl: t.find_typed("SRC_BLACKLIST", FieldType::Scalar(Scalar::U64))?,
            dst_bl: t.find_typed("DST_BLACKLIST", FieldType::Scalar(Scalar::U64))?,
            time: t
                .find_typed("TIME_LAST", FieldType::Scalar(Scalar::Time))
                .or_else(|| t.find_typed("TIME_FIRST", FieldType::Scalar(Scalar::Time))),
        })
    }
}

fn now() -> UrTime {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UrTime::from_secs_nanos(d.as_secs() as u32, d.subsec_nanos())
}

struct Published {
    active: Arc<AtomicU64>,
    started: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    suppressed: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Published {
    fn new(t: &Trap) -> Published {
        Published {
            active: t.counter("active"),
            started: t.counter("started"),
            refused: t.counter("refused"),
            suppressed: t.counter("suppressed"),
            done: t.counter("done"),
            failed: t.counter("failed"),
        }
    }
    fn update(&self, c: &Counters, failed: u64) {
        self.active.store(c.active, Relaxed);
        self.started.store(c.started, Relaxed);
        self.refused.store(c.refused, Relaxed);
        self.suppressed.store(c.suppressed, Relaxed);
        self.done.store(c.done, Relaxed);
        self.failed.store(failed, Relaxed);
    }
}

struct EventWriter {
    tmpl: Template,
    buf: Vec<u8>,
}

impl EventWriter {
    fn encode(&mut self, d: &Done) -> Result<&[u8]> {
        let t = &self.tmpl;
        let f = |n: &str| {
            t.find(n)
                .with_context(|| format!("{n} missing in EVENT_SPEC"))
        };
        let mut b = RecordBuilder::new(t);
        b.set_ip(f("SRC_IP")?, UrIp::from(d.pair.local))?;
        b.set_ip(f("DST_IP")?, UrIp::from(d.pair.remote))?;
        b.set_time(f("TIME_FIRST")?, d.first)?;
        b.set_time(f("TIME_LAST")?, d.last)?;
        b.set_u32(f("PACKETS")?, d.packets.min(u64::from(u32::MAX)) as u32)?;
        b.set_u64(f("BYTES")?, d.bytes)?;
        b.set_u64(f("DST_BLACKLIST")?, d.blacklist)?;
        let name = d
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        b.set_var(f("FILENAME")?, name.as_bytes())?;
        b.set_var(f("STATUS")?, d.status.as_bytes())?;
        self.buf.clear();
        b.finish(&mut self.buf)?;
        Ok(&self.buf)
    }
}

fn run(args: &Args) -> Result<()> {
    let local = LocalNets::parse(&args.local)?;
    if args.duration.is_none() && args.packets.is_none() {
        bail!("give --duration SEC and/or --packets N: how long a capture lasts");
    }
    let duration = match args.duration {
        Some(d) if d.is_finite() && d > 0.0 => Some(Duration::from_secs_f64(d)),
        Some(d) => bail!("--duration {d}: give a positive number of seconds"),
        None => None,
    };
    if args.packets == Some(0) {
        bail!("--packets 0: give at least 1");
    }
    if args.max_sessions == 0 {
        bail!("--max-sessions 0: give at least 1");
    }
    let stop = Stop {
        duration,
        packets: args.packets,
    };
    if !args.dir.is_dir() {
        bail!(
            "{}: no such directory (give -d DIR for the captures)",
            args.dir.display()
        );
    }
    // Fail now, not at the first session, when the interface cannot be
    // captured on.
    drop(open_live(&args.iface, args.snaplen).map_err(|e| {
        anyhow::anyhow!(
            "cannot capture on {}: {e} (is -I right? capturing needs root or CAP_NET_RAW)",
            args.iface
        )
    })?);
    let mut sessions = Sessions::new(
        local,
        Limits {
            max_sessions: args.max_sessions,
            suppress_ms: args.suppress.saturating_mul(1000),
        },
    );
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let published = Published::new(&trap);
    let registry = trap.registry();
    let mut events = EventWriter {
        tmpl: Template::parse(EVENT_SPEC)?,
        buf: Vec::new(),
    };
    let (tx, rx): (Sender<Done>, Receiver<Done>) = channel();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut failed = 0u64;
    let mut fatal: Option<anyhow::Error> = None;
    {
        let (inputs, outputs) = trap.split_mut();
        let input = &mut inputs[0];
        let output = &mut outputs[0];
        input.set_required(Required::UniRec(
            "ipaddr SRC_IP,ipaddr DST_IP,uint64 SRC_BLACKLIST,uint64 DST_BLACKLIST".into(),
        ));
        input.set_timeout(Timeout::Micros(100_000));
        output.set_format(DataFormat::UniRec(events.tmpl.spec().to_string()))?;
        let mut tmpl: Option<(Template, Fields)> = None;
        let mut finished = |d: Done,
                            sessions: &mut Sessions,
                            output: &mut libtrap::Output,
                            failed: &mut u64|
         -> Result<()> {
            sessions.finish(&d.pair);
            registry.remove_counter(&session_counter(&d.pair));
            if d.status.starts_with("error") {
                *failed += 1;
                libtrap::log::warn(&format!(
                    "capture of {} and {} failed after {} packets: {} (the partial file was removed)",
                    d.pair.local,
                    d.pair.remote,
                    d.packets,
                    d.status.trim_start_matches("error: ")
                ));
            } else {
                libtrap::log::info(
                    0,
                    &format!(
                        "capture of {} and {} done ({}): {} packets in {}",
                        d.pair.local,
                        d.pair.remote,
                        d.status,
                        d.packets,
                        d.file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                );
            }
            let rec = events.encode(&d)?;
            libtrap::ok_if_terminated(output.send(rec))?;
            Ok(())
        };
        let mut ended = false;
        while !libtrap::is_terminated() {
            while let Ok(d) = rx.try_recv() {
                if let Err(e) = finished(d, &mut sessions, output, &mut failed) {
                    fatal.get_or_insert(e);
                }
            }
            published.update(&sessions.counters, failed);
            if fatal.is_some() {
                break;
            }
            if ended {
                // The input ended: the captures running complete first.
                if sessions.counters.active == 0 {
                    break;
                }
                libtrap::sleep(Duration::from_millis(50));
                continue;
            }
            let msg = match input.recv() {
                Ok(m) => m,
                Err(TrapError::Timeout) => continue,
                Err(TrapError::Terminated) => break,
                Err(e) => {
                    fatal = Some(e.into());
                    break;
                }
            };
            if msg.is_eos() {
                ended = true;
                continue;
            }
            if msg.format_changed || tmpl.is_none() {
                let Some(DataFormat::UniRec(spec)) = msg.format else {
                    fatal = Some(anyhow::anyhow!("the input is not UniRec"));
                    break;
                };
                let t = Template::parse(spec)?;
                let Some(f) = Fields::new(&t) else {
                    fatal = Some(anyhow::anyhow!(
                        "the input lacks SRC_IP, DST_IP, SRC_BLACKLIST or DST_BLACKLIST (connect ipblacklistfilter's output)"
                    ));
                    break;
                };
                tmpl = Some((t, f));
            }
            let Some((t, f)) = &tmpl else { continue };
            let rec = match RecordRef::new_checked(t, msg.data) {
                Ok(r) => r,
                Err(e) => {
                    libtrap::log::warn(&format!("malformed record skipped: {e}"));
                    continue;
                }
            };
            let (Some(src), Some(dst), Some(sbl), Some(dbl)) = (
                rec.get_ip(f.src),
                rec.get_ip(f.dst),
                rec.get_u64(f.src_bl),
                rec.get_u64(f.dst_bl),
            ) else {
                continue;
            };
            let flow = Flagged {
                src: src.to_std(),
                dst: dst.to_std(),
                src_blacklist: sbl,
                dst_blacklist: dbl,
                time: f.time.and_then(|i| rec.get_time(i)).unwrap_or_else(now),
            };
            for d in sessions.flow(&flow) {
                match d {
                    Decision::Start { pair, blacklist } => {
                        let path = free_path(&capture_file_name(&args.dir, flow.time, &pair));
                        libtrap::log::info(
                            0,
                            &format!(
                                "capturing {} and {} into {}",
                                pair.local,
                                pair.remote,
                                path.display()
                            ),
                        );
                        let job = Job {
                            progress: registry.counter(&session_counter(&pair)),
                            iface: args.iface.clone(),
                            snaplen: args.snaplen,
                            stop,
                            path,
                            pair,
                            blacklist,
                            start: flow.time,
                        };
                        let tx = tx.clone();
                        threads.retain(|t| !t.is_finished());
                        threads.push(std::thread::spawn(move || capture(job, tx)));
                    }
                    Decision::Refused(pair) => libtrap::log::info(
                        1,
                        &format!(
                            "{} and {}: {} captures running, not started",
                            pair.local, pair.remote, args.max_sessions
                        ),
                    ),
                    Decision::Suppressed(pair) => libtrap::log::info(
                        1,
                        &format!(
                            "{} and {}: captured less than {} s ago, not started",
                            pair.local, pair.remote, args.suppress
                        ),
                    ),
                    Decision::Running(_) => {}
                }
            }
            published.update(&sessions.counters, failed);
        }
        // Stopped or ended: the captures close their files and report.
        drop(tx);
        for t in threads.drain(..) {
            let _ = t.join();
        }
        while let Ok(d) = rx.try_recv() {
            if let Err(e) = finished(d, &mut sessions, output, &mut failed) {
                fatal.get_or_insert(e);
            }
        }
    }
    published.update(&sessions.counters, failed);
    let c = sessions.counters;
    libtrap::log::info(
        0,
        &format!(
            "{} captures started, {} done ({} failed), {} refused, {} suppressed",
            c.started, c.done, failed, c.refused, c.suppressed
        ),
    );
    let ended = trap.end(!args.no_eos);
    if let Some(e) = fatal {
        return Err(e);
    }
    ended?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("capture_trigger");
    module::start("capture_trigger", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
