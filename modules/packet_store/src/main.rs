//! packet_store — packet records into SQLite or PostgreSQL; `query` exports
//! them back to pcap.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use packet_capture::{pcap::PcapWriter, split_micros, PacketFields, PACKET_SPEC};
use packet_store::select::{parse_time, time_ns};
use packet_store::{Encoding, Options, Row, Selection, Store, StoreError};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use unirec::{Template, UrTime};

/// Stores packet records (packet_capture's template) in a database, in
/// batches of one transaction each: a SQLite file (WAL journal) by default,
/// PostgreSQL with --db postgres://USER@HOST:PORT/DATABASE. With dedup (the
/// default) a packet whose PKT_HASH is already stored is skipped. When the
/// database goes away (PostgreSQL restarted, SQLite locked) the batch is kept
/// and retried every 0.5 s until it is stored; meanwhile records wait in the
/// input. A full disk ends the run with an error; what was committed before
/// stays. Counters `stored`, `duplicates` and `retries` are on the service
/// interface.
///
/// `packet_store query --db DB -w OUT.pcap [--from T] [--to T] [--host A [--host B]] [-f BPF]`
/// writes the stored packets back to a pcap file in time order
/// (`packet_store query --help`).
#[derive(Parser, Debug)]
#[command(
    name = "packet_store",
    version,
    after_help = "Interfaces: 1 input, 0 outputs. Run `packet_store -h trap` for the -i syntax.\n\
Examples: packet_store --db snoop.sqlite -i u:snoop\n          packet_store --db postgres://snoop@127.0.0.1:5432/snoop --batch 5000 -i u:snoop\n          packet_store query --db snoop.sqlite --host 198.51.100.1 --host 198.51.100.2 -w pair.pcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// The database: a SQLite file (made when missing) or postgres://….
    #[arg(
        short = 'd',
        long = "db",
        value_name = "URL",
        default_value = "snoop.sqlite"
    )]
    db: String,
    /// Store every packet, duplicates too (no unique hash).
    #[arg(long = "no-dedup")]
    no_dedup: bool,
    /// How the frame is stored.
    #[arg(short = 'e', long = "encoding", value_enum, default_value_t = Encoding::Blob)]
    encoding: Encoding,
    /// Packets per transaction.
    #[arg(short = 'b', long = "batch", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// A batch not full is written after this many seconds.
    #[arg(
        short = 'F',
        long = "flush-interval",
        value_name = "SEC",
        default_value_t = 1.0
    )]
    flush_interval: f64,
}

/// Exports stored packets to a pcap file (tcpdump, tshark and Wireshark
/// open it) in time order, with the original timestamps and lengths.
#[derive(Parser, Debug)]
#[command(name = "packet_store query", version)]
struct QueryArgs {
    /// The database (as for storing).
    #[arg(
        short = 'd',
        long = "db",
        value_name = "URL",
        default_value = "snoop.sqlite"
    )]
    db: String,
    /// The pcap file to write (written whole, then renamed into place).
    #[arg(short = 'w', long = "write", value_name = "OUT.pcap")]
    write: String,
    /// First capture time: 2026-12-03T14:00:00[.ffffff] (UTC) or Unix seconds.
    #[arg(long = "from", value_name = "TIME")]
    from: Option<String>,
    /// Last capture time (inclusive).
    #[arg(long = "to", value_name = "TIME")]
    to: Option<String>,
    /// Only packets from or to this address; given twice, only packets
    /// between the two (both directions).
    #[arg(long = "host", value_name = "ADDR")]
    host: Vec<IpAddr>,
    /// Only packets this BPF filter (libpcap syntax, as tcpdump's) matches;
    /// it sees the stored bytes (a `len` test compares their length).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    filter: Option<String>,
}

fn fatal(e: StoreError) -> anyhow::Error {
    anyhow!("{e}")
}

struct Batch {
    rows: Vec<Row>,
    n: usize,
}

impl Batch {
    fn push(&mut self, p: &packet_capture::Packet<'_>) {
        if self.n == self.rows.len() {
            self.rows.push(Row::default());
        }
        let r = &mut self.rows[self.n];
        r.ts_ns = time_ns(p.time);
        r.link = p.link;
        r.wire_len = p.wire_len;
        r.cap_len = p.data.len() as u32;
        r.hash = p.hash;
        r.packet.clear();
        r.packet.extend_from_slice(p.data);
        self.n += 1;
    }
}

struct Counters {
    stored: std::sync::Arc<std::sync::atomic::AtomicU64>,
    dups: std::sync::Arc<std::sync::atomic::AtomicU64>,
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    n_stored: u64,
    n_dups: u64,
    n_retries: u64,
}

/// Writes the batch, retrying while the database is unavailable. After
/// SIGINT/SIGTERM one more try is made; a batch still not stored then is an
/// error that says how many packets were not stored.
fn flush(store: &mut dyn Store, batch: &mut Batch, c: &mut Counters) -> Result<()> {
    if batch.n == 0 {
        return Ok(());
    }
    let mut warned = false;
    loop {
        match store.insert(&batch.rows[..batch.n]) {
            Ok(new) => {
                c.n_stored += new;
                c.n_dups += batch.n as u64 - new;
                c.stored.store(c.n_stored, Relaxed);
                c.dups.store(c.n_dups, Relaxed);
                if warned {
                    libtrap::log::warn(&format!(
                        "{}: the database is back, the held batch is stored",
                        store.describe()
                    ));
                }
                batch.n = 0;
                return Ok(());
            }
            Err(StoreError::Unavailable(why)) => {
                if libtrap::is_terminated() {
                    bail!(
                        "{why}; {} packets of the last batch are not stored",
                        batch.n
                    );
                }
                if !warned {
                    libtrap::log::warn(&format!(
                        "{why}; holding {} packets and retrying every 0.5 s",
                        batch.n
                    ));
                    warned = true;
                }
                c.n_retries += 1;
                c.retries.store(c.n_retries, Relaxed);
                libtrap::sleep(Duration::from_millis(500));
                if libtrap::is_terminated() {
                    // One last try on the next round, without waiting for
                    // a connect.
                    continue;
                }
                // A failed reconnect is retried at the next round.
                if let Err(e @ StoreError::Fatal(_)) = store.reconnect() {
                    return Err(fatal(e));
                }
            }
            Err(e) => {
                return Err(anyhow!(
                    "{e}; {} packets of the last batch are not stored",
                    batch.n
                ))
            }
        }
    }
}

fn store(args: Args) -> Result<()> {
    if !(args.flush_interval.is_finite() && args.flush_interval > 0.0) {
        bail!(
            "--flush-interval {}: give a number of seconds > 0",
            args.flush_interval
        );
    }
    let start = Instant::now();
    let mut db = packet_store::open(
        &args.db,
        Options {
            encoding: args.encoding,
            dedup: !args.no_dedup,
            adopt: false,
        },
    )
    .map_err(fatal)?;
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(0))?;
    let mut c = Counters {
        stored: trap.counter("stored"),
        dups: trap.counter("duplicates"),
        retries: trap.counter("retries"),
        n_stored: 0,
        n_dups: 0,
        n_retries: 0,
    };
    let interval = Duration::from_secs_f64(args.flush_interval.min(86_400.0));
    let input = &mut trap.inputs()[0];
    input.set_required(Required::UniRec(PACKET_SPEC.to_string()));
    input.set_timeout(Timeout::Micros(100_000));
    let mut batch = Batch {
        rows: Vec::new(),
        n: 0,
    };
    let mut current: Option<(Template, PacketFields)> = None;
    let mut last_flush = Instant::now();
    let mut received = 0u64;
    let result: Result<()> = loop {
        if batch.n > 0 && last_flush.elapsed() >= interval {
            if let Err(e) = flush(db.as_mut(), &mut batch, &mut c) {
                break Err(e);
            }
            last_flush = Instant::now();
        }
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(e.into()),
        };
        if msg.format_changed || (current.is_none() && !msg.is_eos()) {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{}: the input is not UniRec", input.name()));
            };
            let tmpl = match Template::parse(spec) {
                Ok(t) => t,
                Err(e) => break Err(anyhow!("bad template from the sender: {e}")),
            };
            match PacketFields::resolve(&tmpl) {
                Ok(f) => current = Some((tmpl, f)),
                Err(e) => break Err(e.into()),
            }
        }
        if msg.is_eos() {
            break Ok(());
        }
        let Some((tmpl, fields)) = &current else {
            break Err(anyhow!(
                "{}: a record came before its template",
                input.name()
            ));
        };
        match fields.read(tmpl, msg.data) {
            Ok(p) => batch.push(&p),
            Err(e) => break Err(anyhow!("{}: {e}", input.name())),
        }
        received += 1;
        if batch.n >= args.batch as usize {
            if let Err(e) = flush(db.as_mut(), &mut batch, &mut c) {
                break Err(e);
            }
            last_flush = Instant::now();
        }
    };
    // What is held is written at the end, whatever ended the loop.
    let flushed = if result.is_ok() {
        flush(db.as_mut(), &mut batch, &mut c)
    } else {
        Ok(())
    };
    let closed = libtrap::ok_if_terminated(trap.finish());
    let t = start.elapsed();
    eprintln!("Info: Packets received:   {received:>16}");
    eprintln!("Info: Packets stored:     {:>16}", c.n_stored);
    eprintln!("Info: Duplicates skipped: {:>16}", c.n_dups);
    if c.n_retries > 0 {
        eprintln!("Info: Batch retries:      {:>16}", c.n_retries);
    }
    eprintln!(
        "Info: Time elapsed:       {}.{:03}s",
        t.as_secs(),
        t.subsec_millis()
    );
    result?;
    flushed?;
    closed?;
    Ok(())
}

fn query(args: QueryArgs) -> Result<()> {
    if args.host.len() > 2 {
        bail!("--host is given at most twice (one host, or a pair)");
    }
    let time = |opt: &Option<String>, name: &str| -> Result<Option<i64>> {
        opt.as_deref()
            .map(|s| {
                parse_time(s).ok_or_else(|| {
                    anyhow!("--{name} {s}: give 2026-12-03T14:00:00[.ffffff] (UTC) or Unix seconds")
                })
            })
            .transpose()
    };
    let sel = Selection {
        from_ns: time(&args.from, "from")?,
        to_ns: time(&args.to, "to")?,
        hosts: args.host.clone(),
    };
    let bpf = match &args.filter {
        Some(f) => Some(
            pcap::Capture::dead(pcap::Linktype::ETHERNET)
                .and_then(|c| c.compile(f, true))
                .map_err(|e| anyhow!("bad filter `{f}`: {e}"))?,
        ),
        None => None,
    };
    if !args.db.starts_with("postgres") && !std::path::Path::new(&args.db).exists() {
        bail!(
            "{}: no such database (give the --db packet_store wrote)",
            args.db
        );
    }
    let mut db = packet_store::open(
        &args.db,
        Options {
            encoding: Encoding::Blob,
            dedup: true,
            adopt: true,
        },
    )
    .map_err(fatal)?;
    let out = std::path::PathBuf::from(&args.write);
    let tmp = out.with_file_name(format!(
        ".{}.part",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.pcap".into())
    ));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = PcapWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), 65535)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let (from, to) = sel.range();
    let mut n = 0u64;
    let scanned = db.scan(from, to, &mut |r: Row| {
        if !sel.matches(&r.packet) || bpf.as_ref().is_some_and(|b| !b.filter(&r.packet)) {
            return Ok(());
        }
        let t = ns_time(r.ts_ns);
        let (s, us) = split_micros(t);
        n += 1;
        w.write(s, us, r.wire_len, &r.packet)
    });
    let written = scanned.map_err(fatal).and_then(|()| {
        let f = w.into_inner()?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(())
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("Info: Packets written:    {n:>16}");
    Ok(())
}

/// ns since the epoch → UniRec time.
fn ns_time(ns: i64) -> UrTime {
    let secs = ns.div_euclid(1_000_000_000);
    let sub = ns.rem_euclid(1_000_000_000);
    UrTime::from_secs_nanos(
        u32::try_from(secs).unwrap_or(0),
        u32::try_from(sub).unwrap_or(0),
    )
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let first = argv.nth(1);
    if first.as_deref() == Some(std::ffi::OsStr::new("query")) {
        let args: QueryArgs = module::parse_args_from(
            "packet_store",
            std::iter::once(std::ffi::OsString::from("packet_store query"))
                .chain(std::env::args_os().skip(2)),
        );
        return module::exit_status(query(args).map_err(|e| format!("{e:#}")));
    }
    let args: Args = module::parse_args("packet_store");
    module::start("packet_store", &args.trap);
    module::exit_status(store(args).map_err(|e| format!("{e:#}")))
}
