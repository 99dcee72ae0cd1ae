//! `j:SUBJECT[:server=nats://HOST:PORT][:stream=NAME][:durable=NAME]...`:
//! TRAP messages through a NATS JetStream stream.
//!
//! Not a libtrap interface: libtrap has no persistent transport. A `j:`
//! output publishes its messages to SUBJECT of a JetStream stream (file
//! storage; created when missing); a `j:` input reads them through a durable
//! pull consumer, so a module that stops or dies resumes where it was.
//!
//! One NATS message is one batch, framed as a TRAP container body: every TRAP
//! message as a big-endian `u16` length and its bytes. Headers carry what a
//! socket's hello carries, on every message, so a reader negotiates at any
//! point of the stream and sees a template change where it happens:
//! `Nemea-Format` (`raw`, `unirec` or `json`) and `Nemea-Spec` (the template).
//! `Nats-Msg-Id` (producer id and batch number) lets the server drop a batch
//! republished after a lost acknowledgement. End of stream is the usual
//! message of one byte; it always ends its batch.
//!
//! Output: a batch is published when the next message would not fit
//! (`batch=BYTES`), after `autoflush=` µs, on end of stream and on
//! flush/close (`buffer=off`: one TRAP message per NATS message). At most
//! `inflight=` batches wait for their publish acknowledgement; `sent`
//! counts a message once the server has acknowledged its batch, and flush,
//! end of stream and close wait for every acknowledgement. A batch whose
//! acknowledgement fails (server down, restarting) is published again, with
//! every later one, in order, until the server takes them.
//!
//! Input: the consumer (`durable=`, default from the program and subject)
//! acknowledges explicitly, one batch at a time (`max_ack_pending` 1, so the
//! order holds across redeliveries). A batch is acknowledged when the module
//! asks for the next one, after an end of stream it was handed, or when it
//! stops on a signal having taken all of it: what a module was handed is
//! never delivered to the next run, and what it was not handed is. A batch
//! the server delivers again (an acknowledgement lost in a server restart)
//! is skipped by its stream sequence. A module killed while holding a batch
//! gets it again after `ack_wait=` seconds. A module that writes its
//! output when a batch is done (`logger` does) may only see the last batch
//! twice if it is killed between that write and the acknowledgement.

use crate::error::{Result, TrapError};
use crate::format::DataFormat;
use crate::input::{Fetch, Source};
use crate::spec::Timeout;
use crate::stats::{IfcInfo, OutputStats};
use crate::stream::RetryLog;
use async_nats::jetstream::{self, consumer, message::PublishMessage, stream as js_stream};
use async_nats::{ConnectOptions, HeaderMap};
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Header naming the data format: `raw`, `unirec` or `json`.
pub const HDR_FORMAT: &str = "Nemea-Format";
/// Header holding the format's spec (the UniRec template).
pub const HDR_SPEC: &str = "Nemea-Spec";
/// The server when `server=` is not given.
pub const DEFAULT_SERVER: &str = "nats://localhost:4222";
/// Default batch size in bytes (as a socket output's container).
pub const DEFAULT_BATCH: usize = 100_000;
/// The largest batch: NATS's default `max_payload` (1 MiB) less room for headers.
pub const MAX_BATCH: usize = 1_000_000;
/// Default number of batches awaiting their acknowledgement.
pub const DEFAULT_INFLIGHT: usize = 16;
/// Default autoflush of a `j:` output.
pub const DEFAULT_AUTOFLUSH: Duration = Duration::from_millis(500);
/// Default `ack_wait=` of the consumer.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(5);
/// How long a stopped module's last flush and end of stream may take.
const GRACE: Duration = Duration::from_millis(250);
/// How long a request to the server (an acknowledgement) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a wait looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// A checked `j:` interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsOptions {
    pub subject: String,
    /// `nats://HOST:PORT` (or `tls://`).
    pub server: String,
    /// `stream=` if given (else [`JsOptions::stream_name`] derives one).
    pub stream: Option<String>,
    /// `durable=` (inputs) if given.
    pub durable: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `creds=FILE`: a NATS credentials file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// `tls` (or a `tls://` server, or `ca=`): require TLS.
    pub tls: bool,
    /// `ca=FILE`: PEM root certificates to verify the server with.
    pub ca: Option<PathBuf>,
    /// Output: `batch=BYTES` (`buffer=off`: 0, one message per batch).
    pub batch: usize,
    /// Output: `inflight=N`.
    pub inflight: usize,
    /// Output: `autoflush=` (`None`: off).
    pub autoflush: Option<Duration>,
    /// Input: `ack_wait=SECONDS`.
    pub ack_wait: Duration,
}

const INPUT_ONLY: [&str; 2] = ["durable", "ack_wait"];
const OUTPUT_ONLY: [&str; 2] = ["batch", "inflight"];
const SYNTAX: &str = "j:SUBJECT[:server=nats://HOST:PORT][:stream=NAME][:durable=NAME][:user=U:password=P|:creds=FILE][:tls][:ca=FILE]";

/// A stream or consumer name: no whitespace, `.`, `*`, `>`, `/` or `\`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// `s` made a valid stream or consumer name (`flows.in` → `flows_in`).
pub fn name_from(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A literal NATS subject: `.`-separated non-empty tokens, no wildcards.
fn check_subject(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("missing subject ({SYNTAX})"));
    }
    if s.contains(['*', '>']) {
        return Err(format!(
            "subject `{s}` has a wildcard (a j: interface names one subject)"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) || s.split('.').any(str::is_empty) {
        return Err(format!(
            "bad subject `{s}` (dot-separated words without spaces, e.g. nemea.flows)"
        ));
    }
    Ok(())
}

impl JsOptions {
    /// Reads the parameters of a `j:` interface (common setters already taken out).
    /// The colons of `server=nats://HOST:PORT` split it into several
    /// parameters; the words after `server=` without `=` are joined back.
    pub fn parse(
        params: &[String],
        input: bool,
        timeout: Option<Timeout>,
        buffer: Option<bool>,
        autoflush: Option<Option<u64>>,
    ) -> Result<JsOptions, String> {
        let (subject, rest) = params
            .split_first()
            .ok_or_else(|| format!("missing subject ({SYNTAX})"))?;
        check_subject(subject)?;
        if !input && !matches!(timeout, None | Some(Timeout::Wait)) {
            return Err(
                "a j: output always waits for the server (timeout= other than WAIT is not supported)"
                    .into(),
            );
        }
        let mut o = JsOptions {
            subject: subject.clone(),
            server: DEFAULT_SERVER.into(),
            stream: None,
            durable: None,
            user: None,
            password: None,
            creds: None,
            tls: false,
            ca: None,
            batch: if buffer == Some(false) {
                0
            } else {
                DEFAULT_BATCH
            },
            inflight: DEFAULT_INFLIGHT,
            autoflush: match autoflush {
                None => Some(DEFAULT_AUTOFLUSH),
                Some(None) => None,
                Some(Some(us)) => Some(Duration::from_micros(us)),
            },
            ack_wait: DEFAULT_ACK_WAIT,
        };
        // Join `server=nats` `//h` `4222` back into one value.
        let mut joined: Vec<String> = Vec::new();
        for p in rest {
            match joined.last_mut() {
                Some(last) if last.starts_with("server=") && !p.contains('=') && p != "tls" => {
                    last.push(':');
                    last.push_str(p);
                }
                _ => joined.push(p.clone()),
            }
        }
        let mut server = None;
        for p in &joined {
            if p == "tls" {
                o.tls = true;
                continue;
            }
            let Some((k, v)) = p.split_once('=') else {
                return Err(format!("unknown parameter `{p}` ({SYNTAX})"));
            };
            if input && OUTPUT_ONLY.contains(&k) {
                return Err(format!("{k}= applies to j: outputs only"));
            }
            if !input && INPUT_ONLY.contains(&k) {
                return Err(format!("{k}= applies to j: inputs only"));
            }
            let name = |what: &str| {
                if valid_name(v) {
                    Ok(v.to_string())
                } else {
                    Err(format!(
                        "bad {what} name `{v}` (no spaces, `.`, `*`, `>`, `/` or `\\`)"
                    ))
                }
            };
            match k {
                "server" => server = Some(v.to_string()),
                "stream" => o.stream = Some(name("stream")?),
                "durable" => o.durable = Some(name("durable")?),
                "user" => o.user = Some(v.to_string()),
                "password" => o.password = Some(v.to_string()),
                "creds" if !v.is_empty() => o.creds = Some(PathBuf::from(v)),
                "ca" if !v.is_empty() => {
                    o.ca = Some(PathBuf::from(v));
                    o.tls = true;
                }
                "batch" => {
                    o.batch = match v.parse::<usize>() {
                        Ok(n) if (1..=MAX_BATCH).contains(&n) => n,
                        _ => {
                            return Err(format!(
                                "bad batch `{v}` (bytes, 1 to {MAX_BATCH}; buffer=off for one message per batch)"
                            ))
                        }
                    }
                }
                "inflight" => {
                    o.inflight = match v.parse::<usize>() {
                        Ok(n) if (1..=1024).contains(&n) => n,
                        _ => return Err(format!("bad inflight `{v}` (batches, 1 to 1024)")),
                    }
                }
                "ack_wait" => {
                    o.ack_wait = match v.parse::<u64>() {
                        Ok(n) if (1..=3600).contains(&n) => Duration::from_secs(n),
                        _ => return Err(format!("bad ack_wait `{v}` (seconds, 1 to 3600)")),
                    }
                }
                _ => return Err(format!("unknown parameter `{p}` ({SYNTAX})")),
            }
        }
        if o.user.is_some() != o.password.is_some() {
            return Err("user= and password= go together".into());
        }
        if o.user.is_some() && o.creds.is_some() {
            return Err("give user=/password= or creds=, not both".into());
        }
        if let Some(s) = server {
            let addr: async_nats::ServerAddr = s
                .parse()
                .map_err(|e| format!("bad server `{s}`: {e} (server=nats://HOST:PORT)"))?;
            if addr.host().is_empty() {
                return Err(format!(
                    "bad server `{s}`: no host (server=nats://HOST:PORT)"
                ));
            }
            if addr.tls_required() {
                o.tls = true;
            }
            o.server = s;
        }
        Ok(o)
    }

    /// `stream=`, or `NEMEA_` and the subject (`nemea.flows` → `NEMEA_nemea_flows`).
    pub fn stream_name(&self) -> String {
        self.stream
            .clone()
            .unwrap_or_else(|| format!("NEMEA_{}", name_from(&self.subject)))
    }

    /// `durable=`, or the program and the subject (`logger_nemea_flows`).
    pub fn durable_name(&self) -> String {
        self.durable.clone().unwrap_or_else(|| {
            format!(
                "{}_{}",
                name_from(crate::log::program_name()),
                name_from(&self.subject)
            )
        })
    }

    fn stream_config(&self) -> js_stream::Config {
        js_stream::Config {
            name: self.stream_name(),
            subjects: vec![self.subject.clone()],
            storage: js_stream::StorageType::File,
            ..Default::default()
        }
    }

    /// `subject@server` (the interface id in statistics).
    pub fn id(&self) -> String {
        format!("{}@{}", self.subject, self.server)
    }
}

/// The headers announcing `fmt` on every batch.
pub fn format_headers(fmt: &DataFormat) -> Result<HeaderMap, String> {
    let spec = fmt.spec();
    if spec.chars().any(|c| c.is_control()) {
        return Err(
            "the format spec has a control character (not allowed in a NATS header)".into(),
        );
    }
    let mut h = HeaderMap::new();
    h.insert(HDR_FORMAT, format_name(fmt));
    h.insert(HDR_SPEC, spec);
    Ok(h)
}

fn format_name(fmt: &DataFormat) -> &'static str {
    match fmt {
        DataFormat::Raw => "raw",
        DataFormat::UniRec(_) => "unirec",
        DataFormat::Json(_) => "json",
    }
}

/// The format the two headers of a batch announce.
pub fn parse_format(format: Option<&str>, spec: Option<&str>) -> Result<DataFormat, String> {
    let spec = spec.unwrap_or("").to_string();
    match format {
        Some("raw") => Ok(DataFormat::Raw),
        Some("unirec") if !spec.is_empty() => Ok(DataFormat::UniRec(spec)),
        Some("unirec") => Err(format!("a UniRec batch without its {HDR_SPEC} header")),
        Some("json") => Ok(DataFormat::Json(spec)),
        Some(other) => Err(format!(
            "unknown {HDR_FORMAT} `{other}` (raw, unirec or json)"
        )),
        None => Err(format!(
            "a message without the {HDR_FORMAT} header (not written by a j: output)"
        )),
    }
}

/// Follows the format of the batches of one subject: a new format is
/// announced to the input before the batch that carries it.
#[derive(Debug, Default)]
pub struct Decoder {
    format: Option<DataFormat>,
}

impl Decoder {
    /// `Ok(Some(fmt))`: the batch with these headers has a new format.
    pub fn check(
        &mut self,
        format: Option<&str>,
        spec: Option<&str>,
    ) -> Result<Option<DataFormat>, String> {
        let fmt = parse_format(format, spec)?;
        if self.format.as_ref() == Some(&fmt) {
            return Ok(None);
        }
        self.format = Some(fmt.clone());
        Ok(Some(fmt))
    }
}

/// One batch as a reader sees it: the two headers and the payload.
pub type RawBatch = (Option<String>, Option<String>, Vec<u8>);

/// A source over batches held in memory, decoded exactly as a `j:` input
/// decodes what the server delivers: for tests and fuzzing.
pub(crate) struct MemorySource {
    name: String,
    batches: VecDeque<RawBatch>,
    decoder: Decoder,
    stash: Option<Vec<u8>>,
}

impl MemorySource {
    pub(crate) fn new(name: String, batches: Vec<RawBatch>) -> MemorySource {
        MemorySource {
            name,
            batches: batches.into(),
            decoder: Decoder::default(),
            stash: None,
        }
    }
}

impl Source for MemorySource {
    fn fetch(&mut self, buf: &mut Vec<u8>, _deadline: Option<Instant>) -> Result<Fetch> {
        if let Some(p) = self.stash.take() {
            *buf = p;
            return Ok(Fetch::Buffer { seq: None });
        }
        let Some((f, s, p)) = self.batches.pop_front() else {
            return Ok(Fetch::End);
        };
        match self.decoder.check(f.as_deref(), s.as_deref()) {
            Err(e) => Err(TrapError::corrupt(&self.name, &e)),
            Ok(Some(fmt)) => {
                self.stash = Some(p);
                Ok(Fetch::Hello(fmt))
            }
            Ok(None) => {
                *buf = p;
                Ok(Fetch::Buffer { seq: None })
            }
        }
    }
    fn id(&self) -> String {
        self.name.clone()
    }
    fn connected(&self) -> bool {
        true
    }
}

/// What a bounded wait gave.
enum Wait<T> {
    Done(T),
    Timeout,
    Terminated,
}

/// The connection of one interface: its own small runtime (one worker
/// thread, where the NATS client and the publisher run) and the client.
struct Conn {
    server: String,
    rt: Option<tokio::runtime::Runtime>,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The last connection event worth reporting (refused, auth...).
    last_event: Arc<Mutex<Option<String>>>,
    /// Set once the module was told to stop: its last operations end here.
    grace_end: Option<Instant>,
}

impl Conn {
    fn open(ifc: &str, o: &JsOptions) -> Result<Conn> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("trap-nats")
            .enable_all()
            .build()
            .map_err(|e| TrapError::io(ifc, "cannot start the NATS client runtime", e))?;
        let last_event = Arc::new(Mutex::new(None));
        let events = last_event.clone();
        let mut opts = ConnectOptions::new()
            .name(format!("{} {ifc}", crate::log::program_name()))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(1))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .reconnect_delay_callback(|n| Duration::from_millis(100 * (n as u64).min(10)))
            .event_callback(move |ev| {
                let events = events.clone();
                async move {
                    let text = match ev {
                        async_nats::Event::Connected => None,
                        other => Some(other.to_string()),
                    };
                    if let Ok(mut g) = events.lock() {
                        *g = text;
                    }
                }
            });
        if let (Some(u), Some(p)) = (&o.user, &o.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(c) = &o.creds {
            opts = rt.block_on(opts.credentials_file(c)).map_err(|e| {
                TrapError::BadSpec(format!(
                    "{ifc}: cannot read the credentials file {}: {} (creds=FILE: a NATS .creds file)",
                    c.display(),
                    crate::error::os_reason(&e)
                ))
            })?;
        }
        if o.tls {
            opts = opts.require_tls(true);
        }
        if let Some(ca) = &o.ca {
            if let Err(e) = std::fs::metadata(ca) {
                return Err(TrapError::io(
                    ifc,
                    format!("cannot read the CA file {}", ca.display()),
                    e,
                ));
            }
            opts = opts.add_root_certificates(ca.clone());
        }
        let client = rt.block_on(opts.connect(o.server.as_str())).map_err(|e| {
            TrapError::BadSpec(format!("{ifc}: cannot use server {}: {e}", o.server))
        })?;
        // The context spawns its acknowledgement task on the runtime.
        let guard = rt.enter();
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        drop(guard);
        Ok(Conn {
            server: o.server.clone(),
            rt: Some(rt),
            client,
            js,
            last_event,
            grace_end: None,
        })
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Why an operation failed, said once: the connection if it is down.
    fn reason(&self, e: &dyn std::fmt::Display) -> String {
        reason(&self.client, &self.server, &self.last_event, e)
    }

    /// Runs `fut` until it completes, `deadline` passes or the module is
    /// told to stop (checked every [`TICK`]). From the moment a wait sees
    /// the stop, the interface's last operations (flush, end of stream)
    /// get [`GRACE`] in all.
    fn wait<F: Future>(&mut self, fut: F, deadline: Option<Instant>) -> Wait<F::Output> {
        if crate::is_terminated() && self.grace_end.is_none() {
            self.grace_end = Some(Instant::now() + GRACE);
        }
        let grace_end = self.grace_end;
        let Some(rt) = &self.rt else {
            return Wait::Terminated;
        };
        let r = rt.block_on(async move {
            let mut fut = pin!(fut);
            loop {
                let now = Instant::now();
                let end = match (deadline, grace_end) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let step = end.map_or(TICK, |e| e.saturating_duration_since(now).min(TICK));
                if let Ok(v) = tokio::time::timeout(step, &mut fut).await {
                    return Wait::Done(v);
                }
                let now = Instant::now();
                if grace_end.is_some_and(|g| now >= g)
                    || (grace_end.is_none() && crate::is_terminated())
                {
                    return Wait::Terminated;
                }
                if deadline.is_some_and(|d| now >= d) {
                    return Wait::Timeout;
                }
            }
        });
        if matches!(r, Wait::Terminated) && self.grace_end.is_none() {
            self.grace_end = Some(Instant::now() + GRACE);
        }
        r
    }
}

fn reason(
    client: &async_nats::Client,
    server: &str,
    last_event: &Mutex<Option<String>>,
    e: &dyn std::fmt::Display,
) -> String {
    if client.connection_state() == async_nats::connection::State::Connected {
        return e.to_string();
    }
    // The client says only "IO error": the operating system says why.
    let why = probe(server).or_else(|| last_event.lock().ok().and_then(|g| g.clone()));
    match why {
        Some(why) => format!("cannot reach the NATS server {server} ({why})"),
        None => format!("cannot reach the NATS server {server}"),
    }
}

/// Why a TCP connection to the server fails (`None`: it does not).
fn probe(server: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let addr: async_nats::ServerAddr = server.parse().ok()?;
    let addrs = match (addr.host(), addr.port()).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return Some(format!(
                "cannot resolve {}: {}",
                addr.host(),
                crate::error::os_reason(&e)
            ))
        }
    };
    let mut last = None;
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)) {
            Ok(_) => return None,
            Err(e) => last = Some(crate::error::os_reason(&e)),
        }
    }
    last
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Checks that the stream takes `subject` (an existing stream may not).
fn stream_takes(name: &str, subjects: &[String], subject: &str) -> Result<(), String> {
    let covers = |pattern: &str| {
        let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some(a), Some(b)) if a == "*" || a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    };
    if subjects.iter().any(|p| covers(p)) {
        Ok(())
    } else {
        Err(format!(
            "stream {} exists and does not take subject {subject} (its subjects: {}): pick another stream= or add the subject",
            name,
            subjects.join(", ")
        ))
    }
}

/// The stream, created when missing.
async fn ensure_stream(js: &jetstream::Context, o: &JsOptions) -> Result<(), Setup> {
    let mut stream = js
        .get_or_create_stream(o.stream_config())
        .await
        .map_err(|e| Setup::Retry(e.to_string()))?;
    let info = stream
        .info()
        .await
        .map_err(|e| Setup::Retry(e.to_string()))?;
    stream_takes(&info.config.name, &info.config.subjects, &o.subject).map_err(Setup::Fatal)
}

/// A failed set-up step: worth retrying (the server is away) or not.
enum Setup {
    Retry(String),
    Fatal(String),
}

// ---------------------------------------------------------------- output

/// A batch being filled by the module.
#[derive(Default)]
struct OpenBatch {
    buf: Vec<u8>,
    count: u64,
    since: Option<Instant>,
    headers: Option<HeaderMap>,
}

/// A batch ready to publish.
struct Batch {
    payload: bytes::Bytes,
    headers: HeaderMap,
    count: u64,
}

impl OpenBatch {
    /// Takes the filled part, if any.
    fn take(&mut self, taken: &AtomicU64) -> Option<Batch> {
        if self.count == 0 {
            return None;
        }
        let payload = bytes::Bytes::from(std::mem::take(&mut self.buf));
        let count = std::mem::take(&mut self.count);
        self.since = None;
        taken.fetch_add(1, Relaxed);
        Some(Batch {
            payload,
            headers: self.headers.clone().unwrap_or_default(),
            count,
        })
    }
}

struct WriterShared {
    open: Mutex<OpenBatch>,
    /// Batches handed to the publisher (by the module or the autoflush).
    taken: AtomicU64,
    /// An error that ends the output (the publisher stopped).
    fatal: Mutex<Option<String>>,
}

/// The sending side of a `j:` interface.
pub(crate) struct JsWriter {
    ifc: String,
    opts: JsOptions,
    conn: Conn,
    shared: Arc<WriterShared>,
    tx: tokio::sync::mpsc::Sender<Batch>,
    acked: tokio::sync::watch::Receiver<u64>,
    info: Arc<IfcInfo>,
    stats: Arc<OutputStats>,
}

impl JsWriter {
    pub(crate) fn open(ifc: String, opts: JsOptions) -> Result<JsWriter> {
        let conn = Conn::open(&ifc, &opts)?;
        let info = Arc::new(IfcInfo::new('j', opts.id()));
        let stats = Arc::new(OutputStats::default());
        let shared = Arc::new(WriterShared {
            open: Mutex::new(OpenBatch::default()),
            taken: AtomicU64::new(0),
            fatal: Mutex::new(None),
        });
        let (tx, rx) = tokio::sync::mpsc::channel(opts.inflight);
        let (acked_tx, acked) = tokio::sync::watch::channel(0u64);
        let publisher = Publisher {
            ifc: ifc.clone(),
            opts: opts.clone(),
            js: conn.js.clone(),
            client: conn.client.clone(),
            last_event: conn.last_event.clone(),
            shared: shared.clone(),
            stats: stats.clone(),
            acked: acked_tx,
            producer: producer_id(),
        };
        if let Some(rt) = &conn.rt {
            rt.spawn(publisher.run(rx));
        }
        Ok(JsWriter {
            ifc,
            opts,
            conn,
            shared,
            tx,
            acked,
            info,
            stats,
        })
    }

    pub(crate) fn stats(&self) -> (Arc<IfcInfo>, Arc<OutputStats>) {
        (self.info.clone(), self.stats.clone())
    }

    fn fatal(&self) -> Result<()> {
        match self.shared.fatal.lock().ok().and_then(|g| g.clone()) {
            Some(m) => Err(TrapError::Refused {
                ifc: self.ifc.clone(),
                detail: m,
            }),
            None => Ok(()),
        }
    }

    /// Hands `b` to the publisher, waiting while `inflight=` batches are queued.
    fn push(&mut self, b: Batch) -> Result<()> {
        self.push_until(b, None)
    }

    fn push_until(&mut self, b: Batch, deadline: Option<Instant>) -> Result<()> {
        let tx = self.tx.clone();
        match self.conn.wait(tx.send(b), deadline) {
            Wait::Done(Ok(())) => Ok(()),
            Wait::Done(Err(_)) => {
                self.fatal()?;
                Err(TrapError::corrupt(&self.ifc, "the NATS publisher stopped"))
            }
            Wait::Timeout | Wait::Terminated => Err(TrapError::Terminated),
        }
    }

    pub(crate) fn set_format(&mut self, fmt: &DataFormat) -> Result<()> {
        let headers =
            format_headers(fmt).map_err(|m| TrapError::BadSpec(format!("{}: {m}", self.ifc)))?;
        let shared = self.shared.clone();
        let mut g = shared.open.lock().map_err(|_| self.poisoned())?;
        if let Some(b) = g.take(&shared.taken) {
            self.push(b)?;
        }
        g.headers = Some(headers);
        Ok(())
    }

    fn poisoned(&self) -> TrapError {
        TrapError::corrupt(&self.ifc, "the NATS publisher panicked")
    }

    pub(crate) fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.fatal()?;
        let Ok(len) = u16::try_from(msg.len()) else {
            return Err(TrapError::BadSpec(format!(
                "{}: a message of {} bytes (TRAP messages hold at most 65535)",
                self.ifc,
                msg.len()
            )));
        };
        let shared = self.shared.clone();
        let mut g = shared.open.lock().map_err(|_| self.poisoned())?;
        if g.count > 0 && g.buf.len() + 2 + msg.len() > self.opts.batch {
            if let Some(b) = g.take(&shared.taken) {
                self.push(b)?;
            }
        }
        g.buf.extend_from_slice(&len.to_be_bytes());
        g.buf.extend_from_slice(msg);
        g.count += 1;
        g.since.get_or_insert_with(Instant::now);
        let eos = msg.len() <= 1;
        if eos || g.buf.len() >= self.opts.batch {
            if let Some(b) = g.take(&shared.taken) {
                self.push(b)?;
            }
        }
        drop(g);
        if eos {
            self.wait_acked()?;
        }
        Ok(())
    }

    /// Waits until the server acknowledged every batch taken so far.
    fn wait_acked(&mut self) -> Result<()> {
        self.wait_acked_until(None)
    }

    fn wait_acked_until(&mut self, deadline: Option<Instant>) -> Result<()> {
        let target = self.shared.taken.load(Relaxed);
        loop {
            self.fatal()?;
            if *self.acked.borrow() >= target {
                return Ok(());
            }
            let mut acked = self.acked.clone();
            match self.conn.wait(acked.changed(), deadline) {
                Wait::Done(Ok(())) => {}
                Wait::Done(Err(_)) => {
                    self.fatal()?;
                    return Err(TrapError::corrupt(&self.ifc, "the NATS publisher stopped"));
                }
                Wait::Timeout | Wait::Terminated => return Err(TrapError::Terminated),
            }
        }
    }

    /// Publishes the open batch and waits for every acknowledgement.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.flush_until(None)
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.fatal()?;
        let shared = self.shared.clone();
        let b = shared
            .open
            .lock()
            .map_err(|_| self.poisoned())?
            .take(&shared.taken);
        // The lock is released: the publisher keeps batches in order by
        // publishing the autoflush only while nothing is queued, and the
        // queue is filled only under the lock; a batch taken here before
        // being queued is ahead of anything the autoflush takes after it.
        if let Some(b) = b {
            self.push_until(b, deadline)?;
        }
        self.wait_acked_until(deadline)
    }

    pub(crate) fn close(&mut self) -> Result<()> {
        self.flush()
    }
}

impl Drop for JsWriter {
    /// An output dropped without [`close`](Self::close) (an error path)
    /// still publishes what it holds, waiting a bounded time for the server.
    fn drop(&mut self) {
        let _ = self.flush_until(Some(Instant::now() + 2 * REQUEST_TIMEOUT));
    }
}

/// Identifies this producer's batches (`Nats-Msg-Id`): pid and start time.
fn producer_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos)
}

type AckFuture =
    Pin<Box<dyn Future<Output = Result<jetstream::publish::PublishAck, String>> + Send>>;

struct Publisher {
    ifc: String,
    opts: JsOptions,
    js: jetstream::Context,
    client: async_nats::Client,
    last_event: Arc<Mutex<Option<String>>>,
    shared: Arc<WriterShared>,
    stats: Arc<OutputStats>,
    acked: tokio::sync::watch::Sender<u64>,
    producer: String,
}

impl Publisher {
    /// [`reason`] off the runtime's thread (the probe blocks up to 200 ms).
    async fn reason(&self, e: String) -> String {
        let (client, server, events) = (
            self.client.clone(),
            self.opts.server.clone(),
            self.last_event.clone(),
        );
        tokio::task::spawn_blocking(move || reason(&client, &server, &events, &e))
            .await
            .unwrap_or_else(|_| "the NATS server is unreachable".into())
    }

    fn set_fatal(&self, m: String) {
        if let Ok(mut g) = self.shared.fatal.lock() {
            *g = Some(m);
        }
    }

    async fn publish(&self, id: u64, b: &Batch) -> AckFuture {
        let msg = PublishMessage::build()
            .payload(b.payload.clone())
            .headers(b.headers.clone())
            .message_id(format!("{}-{id}", self.producer));
        match self.js.send_publish(self.opts.subject.clone(), msg).await {
            Ok(ack) => Box::pin(async move { ack.await.map_err(|e| e.to_string()) }),
            Err(e) => {
                let e = e.to_string();
                Box::pin(async move { Err(e) })
            }
        }
    }

    async fn run(self, mut rx: tokio::sync::mpsc::Receiver<Batch>) {
        let mut retry = RetryLog::default();
        loop {
            match ensure_stream(&self.js, &self.opts).await {
                Ok(()) => break,
                Err(Setup::Fatal(m)) => return self.set_fatal(m),
                Err(Setup::Retry(e)) => {
                    retry.failed(&self.ifc, &self.reason(e.to_string()).await);
                    tokio::time::sleep(retry.pause()).await;
                }
            }
        }
        retry.succeeded(&self.ifc);
        // Batches published and not yet acknowledged, oldest first, with
        // their number (the message id) and their acknowledgements in order.
        let mut pending: VecDeque<(u64, Batch)> = VecDeque::new();
        let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
        let (mut next_id, mut acked) = (0u64, 0u64);
        let tick = self
            .opts
            .autoflush
            .map_or(TICK, |a| a.clamp(Duration::from_millis(1), TICK));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut closed = false;
        loop {
            if closed && pending.is_empty() {
                return;
            }
            tokio::select! {
                biased;
                Some(r) = acks.next(), if !acks.is_empty() => match r {
                    Ok(_) => {
                        if let Some((_, b)) = pending.pop_front() {
                            self.stats.sent_messages.fetch_add(b.count, Relaxed);
                            acked += 1;
                            let _ = self.acked.send(acked);
                        }
                        retry.succeeded(&self.ifc);
                    }
                    Err(e) => {
                        // Everything after the failed batch is published
                        // again, in order (the server drops what it has by id).
                        acks = FuturesOrdered::new();
                        retry.failed(&self.ifc, &self.reason(e.to_string()).await);
                        tokio::time::sleep(retry.pause()).await;
                        for (id, b) in &pending {
                            acks.push_back(self.publish(*id, b).await);
                        }
                    }
                },
                b = rx.recv(), if !closed && pending.len() < self.opts.inflight => match b {
                    Some(b) => {
                        let id = next_id;
                        next_id += 1;
                        acks.push_back(self.publish(id, &b).await);
                        pending.push_back((id, b));
                    }
                    None => closed = true,
                },
                _ = ticker.tick(), if self.opts.autoflush.is_some() && pending.len() < self.opts.inflight => {
                    let Some(every) = self.opts.autoflush else { continue };
                    // Only while nothing is queued: what the module queued
                    // is older than the open batch.
                    if !rx.is_empty() {
                        continue;
                    }
                    let b = match self.shared.open.try_lock() {
                        Ok(mut g) if g.since.is_some_and(|s| s.elapsed() >= every) && rx.is_empty() => {
                            g.take(&self.shared.taken)
                        }
                        _ => None,
                    };
                    if let Some(b) = b {
                        self.stats.autoflushes.fetch_add(1, Relaxed);
                        let id = next_id;
                        next_id += 1;
                        acks.push_back(self.publish(id, &b).await);
                        pending.push_back((id, b));
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------- input

/// The receiving side of a `j:` interface: a durable pull consumer.
pub(crate) struct JsSource {
    ifc: String,
    opts: JsOptions,
    conn: Conn,
    messages: Option<consumer::pull::Stream>,
    /// The batch the module is being handed (acknowledged when done).
    held: Option<jetstream::Message>,
    /// A batch whose new format is being announced first.
    stash: Option<jetstream::Message>,
    decoder: Decoder,
    /// Stream sequence of the last batch handed on: redeliveries are skipped.
    last_seq: Option<u64>,
    retry: RetryLog,
    next_attempt: Option<Instant>,
}

impl JsSource {
    pub(crate) fn open(ifc: String, opts: JsOptions) -> Result<JsSource> {
        let conn = Conn::open(&ifc, &opts)?;
        Ok(JsSource {
            ifc,
            opts,
            conn,
            messages: None,
            held: None,
            stash: None,
            decoder: Decoder::default(),
            last_seq: None,
            retry: RetryLog::default(),
            next_attempt: None,
        })
    }

    /// Acknowledges the batch the module was handed (waits for the server's
    /// confirmation; if it cannot come, the redelivery is skipped).
    fn ack_held(&mut self) {
        let Some(m) = self.held.take() else { return };
        let deadline = Some(Instant::now() + REQUEST_TIMEOUT);
        if let Wait::Done(Err(e)) = self.conn.wait(m.double_ack(), deadline) {
            crate::log::info(
                0,
                &format!(
                    "{}: acknowledgement not confirmed ({e}); a redelivery will be skipped",
                    self.ifc
                ),
            );
        }
    }

    async fn open_consumer(
        js: jetstream::Context,
        o: JsOptions,
        durable: String,
    ) -> Result<consumer::pull::Stream, Setup> {
        ensure_stream(&js, &o).await?;
        let stream = js
            .get_stream(o.stream_name())
            .await
            .map_err(|e| Setup::Retry(e.to_string()))?;
        let mut c: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    filter_subject: o.subject.clone(),
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: o.ack_wait,
                    max_ack_pending: 1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Setup::Retry(e.to_string()))?;
        let info = c.info().await.map_err(|e| Setup::Retry(e.to_string()))?;
        let filter = &info.config.filter_subject;
        if !filter.is_empty() && *filter != o.subject {
            return Err(Setup::Fatal(format!(
                "consumer {durable} of stream {} reads subject {filter}, not {}: pick another durable=",
                o.stream_name(),
                o.subject
            )));
        }
        c.stream()
            .max_messages_per_batch(4)
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| Setup::Retry(e.to_string()))
    }

    fn wait_until(&mut self, t: Instant, deadline: Option<Instant>) -> Result<()> {
        let end = deadline.map_or(t, |d| d.min(t));
        let pause = end.saturating_duration_since(Instant::now());
        let sleep = async move { tokio::time::sleep(pause).await };
        match self.conn.wait(sleep, None) {
            Wait::Done(()) if deadline.is_some_and(|d| d <= t) => Err(TrapError::Timeout),
            Wait::Done(()) => Ok(()),
            Wait::Timeout => Err(TrapError::Timeout),
            Wait::Terminated => Err(TrapError::Terminated),
        }
    }

    /// Drops the message stream (its subscription unsubscribes on the runtime).
    fn drop_messages(&mut self) {
        let _guard = self.conn.rt.as_ref().map(|rt| rt.enter());
        self.messages = None;
    }

    fn lost(&mut self, why: String) {
        self.drop_messages();
        self.retry.failed(&self.ifc, &why);
        self.next_attempt = Some(Instant::now() + self.retry.pause());
    }
}

impl Drop for JsSource {
    fn drop(&mut self) {
        // What the module was not handed stays unacknowledged: the next
        // run gets it.
        self.drop_messages();
    }
}

impl Source for JsSource {
    fn fetch(&mut self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<Fetch> {
        self.ack_held();
        if let Some(m) = self.stash.take() {
            buf.clear();
            buf.extend_from_slice(&m.message.payload);
            self.held = Some(m);
            return Ok(Fetch::Buffer { seq: None });
        }
        loop {
            if self.messages.is_none() {
                if let Some(t) = self.next_attempt {
                    // Kept on a timeout: the pause between attempts holds
                    // however short the module's receive timeout is.
                    self.wait_until(t, deadline)?;
                    self.next_attempt = None;
                }
                let fut = JsSource::open_consumer(
                    self.conn.js.clone(),
                    self.opts.clone(),
                    self.opts.durable_name(),
                );
                match self.conn.wait(fut, deadline) {
                    Wait::Done(Ok(s)) => {
                        self.messages = Some(s);
                        self.retry.succeeded(&self.ifc);
                    }
                    Wait::Done(Err(Setup::Fatal(m))) => {
                        return Err(TrapError::Refused {
                            ifc: self.ifc.clone(),
                            detail: m,
                        })
                    }
                    Wait::Done(Err(Setup::Retry(e))) => {
                        let why = self.conn.reason(&e);
                        self.lost(why);
                        continue;
                    }
                    Wait::Timeout => return Err(TrapError::Timeout),
                    Wait::Terminated => return Err(TrapError::Terminated),
                }
            }
            let Some(mut messages) = self.messages.take() else {
                continue;
            };
            let next = self.conn.wait(messages.next(), deadline);
            self.messages = Some(messages);
            let msg = match next {
                Wait::Done(Some(Ok(m))) => m,
                Wait::Done(Some(Err(e))) => {
                    let why = self.conn.reason(&e);
                    self.lost(why);
                    continue;
                }
                Wait::Done(None) => {
                    self.lost("the consumer's message stream ended".into());
                    continue;
                }
                Wait::Timeout => return Err(TrapError::Timeout),
                Wait::Terminated => return Err(TrapError::Terminated),
            };
            let seq = match msg.info() {
                Ok(i) => i.stream_sequence,
                Err(e) => {
                    return Err(TrapError::corrupt(
                        &self.ifc,
                        format!("a message without JetStream metadata: {e}"),
                    ))
                }
            };
            if self.last_seq.is_some_and(|l| seq <= l) {
                // Delivered again after an acknowledgement was lost: the
                // module had it already.
                let deadline = Some(Instant::now() + REQUEST_TIMEOUT);
                let _ = self.conn.wait(msg.double_ack(), deadline);
                continue;
            }
            let headers = msg.message.headers.as_ref();
            let get = |k: &str| {
                headers
                    .and_then(|h| h.get(k))
                    .map(|v| v.as_str().to_string())
            };
            let (f, s) = (get(HDR_FORMAT), get(HDR_SPEC));
            match self.decoder.check(f.as_deref(), s.as_deref()) {
                Err(e) => {
                    // Terminated so that the next run does not stop on it again.
                    let deadline = Some(Instant::now() + REQUEST_TIMEOUT);
                    let _ = self
                        .conn
                        .wait(msg.ack_with(jetstream::AckKind::Term), deadline);
                    self.last_seq = Some(seq);
                    return Err(TrapError::corrupt(
                        &self.ifc,
                        format!("stream message {seq}: {e}"),
                    ));
                }
                Ok(Some(fmt)) => {
                    self.last_seq = Some(seq);
                    self.stash = Some(msg);
                    return Ok(Fetch::Hello(fmt));
                }
                Ok(None) => {
                    self.last_seq = Some(seq);
                    buf.clear();
                    buf.extend_from_slice(&msg.message.payload);
                    self.held = Some(msg);
                    return Ok(Fetch::Buffer { seq: None });
                }
            }
        }
    }

    fn end_of_stream(&mut self, _at: usize, last: bool) -> Result<bool> {
        // The module is handed the end of stream and everything before it;
        // it usually stops there without asking for more.
        if last {
            self.ack_held();
        }
        Ok(true)
    }

    fn handed_all(&mut self) {
        self.ack_held();
    }

    fn id(&self) -> String {
        self.opts.id()
    }

    fn connected(&self) -> bool {
        self.conn.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str, input: bool) -> Result<JsOptions, String> {
        let v = crate::spec::parse(spec).map_err(|e| e.to_string())?;
        let s = &v[0];
        JsOptions::parse(&s.params, input, s.timeout, s.buffer, s.autoflush)
    }

    #[test]
    fn defaults() {
        let o = p("j:nemea.flows", false).unwrap();
        assert_eq!(o.subject, "nemea.flows");
        assert_eq!(o.server, DEFAULT_SERVER);
        assert_eq!(o.stream_name(), "NEMEA_nemea_flows");
        assert_eq!(o.batch, DEFAULT_BATCH);
        assert_eq!(o.inflight, DEFAULT_INFLIGHT);
        assert_eq!(o.autoflush, Some(DEFAULT_AUTOFLUSH));
        assert!(!o.tls);
        let i = p("j:nemea.flows", true).unwrap();
        assert_eq!(i.ack_wait, DEFAULT_ACK_WAIT);
        assert!(
            i.durable_name().ends_with("_nemea_flows"),
            "{}",
            i.durable_name()
        );
    }

    #[test]
    fn server_url_colons_are_joined_back() {
        let o = p(
            "j:a.b:server=nats://198.51.100.1:4333:stream=S1:autoflush=1000:batch=5000:inflight=4",
            false,
        )
        .unwrap();
        assert_eq!(o.server, "nats://198.51.100.1:4333");
        assert_eq!(o.stream.as_deref(), Some("S1"));
        assert_eq!(o.autoflush, Some(Duration::from_micros(1000)));
        assert_eq!((o.batch, o.inflight), (5000, 4));
        let o = p("j:a:server=[2001:db8::1]:4222:tls:ca=/x/ca.pem", true).unwrap();
        assert_eq!(o.server, "[2001:db8::1]:4222");
        assert!(o.tls);
        assert_eq!(o.ca, Some(PathBuf::from("/x/ca.pem")));
        let o = p("j:a:server=tls://h:1:durable=d1:ack_wait=2", true).unwrap();
        assert!(o.tls);
        assert_eq!(o.durable_name(), "d1");
        assert_eq!(o.ack_wait, Duration::from_secs(2));
        let o = p(
            "j:a:server=h:user=u:password=p:buffer=off:autoflush=off",
            false,
        )
        .unwrap();
        assert_eq!(o.server, "h");
        assert_eq!(
            (o.user.as_deref(), o.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!((o.batch, o.autoflush), (0, None));
    }

    #[test]
    fn bad_parameters_say_what_to_write() {
        for (spec, input, needle) in [
            ("j:", false, "missing subject"),
            ("j:a.*", false, "wildcard"),
            ("j:a..b", true, "bad subject"),
            ("j:a:durable=x", false, "durable= applies to j: inputs only"),
            ("j:a:batch=10", true, "batch= applies to j: outputs only"),
            ("j:a:batch=0", false, "bad batch `0`"),
            ("j:a:batch=2000000", false, "bad batch"),
            ("j:a:inflight=0", false, "bad inflight"),
            ("j:a:ack_wait=0", true, "bad ack_wait"),
            ("j:a:stream=a.b", false, "bad stream name `a.b`"),
            ("j:a:durable=x y", true, "bad durable name"),
            ("j:a:user=u", true, "user= and password= go together"),
            ("j:a:user=u:password=p:creds=/c", true, "not both"),
            ("j:a:bogus", true, "unknown parameter `bogus`"),
            ("j:a:color=red", true, "unknown parameter `color=red`"),
            ("j:a:server=nats://:1", false, "bad server"),
            ("j:a:timeout=NO_WAIT", false, "always waits"),
        ] {
            let e = p(spec, input).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        assert!(p("j:a:timeout=NO_WAIT", true).is_ok());
    }

    #[test]
    fn the_spec_grammar_opens_j_on_both_sides() {
        let v = crate::spec::parse("j:in.flows:durable=d,j:out.flows:server=nats://h:5:batch=10")
            .unwrap();
        assert_eq!(v[0].kind, crate::IfcKind::JetStream);
        let (ins, outs) = crate::spec::split(v, Some(1), Some(1)).unwrap();
        match (&ins[0].ifc, &outs[0].ifc) {
            (crate::Ifc::JetStreamIn(i), crate::Ifc::JetStreamOut(o)) => {
                assert_eq!(i.durable.as_deref(), Some("d"));
                assert_eq!((o.server.as_str(), o.batch), ("nats://h:5", 10));
            }
            other => panic!("{other:?}"),
        }
        let e = crate::spec::split(
            crate::spec::parse("j:a:autoflush=5").unwrap(),
            Some(1),
            Some(0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("apply to outputs only"), "{e}");
        let e = crate::spec::split(
            crate::spec::parse("j:a:inflight=x").unwrap(),
            Some(0),
            Some(1),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("output interface `j:a:inflight=x`: bad inflight"),
            "{e}"
        );
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(name_from("a.b*c>d e/f"), "a_b_c_d_e_f");
        assert!(valid_name("NEMEA_x-1"));
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", "a\\b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn headers_carry_the_format_both_ways() {
        for fmt in [
            DataFormat::UniRec("ipaddr DST_IP,ipaddr SRC_IP,uint16 DST_PORT".into()),
            DataFormat::Json("idea".into()),
            DataFormat::Json(String::new()),
            DataFormat::Raw,
        ] {
            let h = format_headers(&fmt).unwrap();
            let get = |k: &str| h.get(k).map(|v| v.as_str().to_string());
            assert_eq!(
                parse_format(get(HDR_FORMAT).as_deref(), get(HDR_SPEC).as_deref()),
                Ok(fmt.clone())
            );
        }
        assert!(format_headers(&DataFormat::UniRec("a\r\nb".into())).is_err());
        assert!(parse_format(None, Some("x"))
            .unwrap_err()
            .contains("not written by a j: output"));
        assert!(parse_format(Some("unirec"), None).is_err());
        assert!(parse_format(Some("xml"), Some("x"))
            .unwrap_err()
            .contains("unknown"));
    }

    #[test]
    fn decoder_reports_format_changes_only() {
        let mut d = Decoder::default();
        assert_eq!(
            d.check(Some("unirec"), Some("uint32 A")),
            Ok(Some(DataFormat::UniRec("uint32 A".into())))
        );
        assert_eq!(d.check(Some("unirec"), Some("uint32 A")), Ok(None));
        assert_eq!(
            d.check(Some("unirec"), Some("uint32 B")),
            Ok(Some(DataFormat::UniRec("uint32 B".into())))
        );
        assert!(d.check(None, None).is_err());
    }

    fn frame(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn memory_input_negotiates_and_frames_like_a_socket() {
        let a = (Some("unirec".into()), Some("uint32 A".into()));
        let b = (Some("unirec".into()), Some("uint32 B".into()));
        let mut input = crate::Input::from_jetstream_batches(
            "j:t",
            vec![
                (a.0.clone(), a.1.clone(), frame(&[b"1111", b"2222"])),
                (a.0.clone(), a.1.clone(), frame(&[b"3333"])),
                (b.0.clone(), b.1.clone(), frame(&[b"44444444", &[0]])),
            ],
        );
        let m = input.recv().unwrap();
        assert!(m.format_changed);
        assert_eq!(m.data, b"1111");
        assert_eq!(input.recv().unwrap().data, b"2222");
        let m = input.recv().unwrap();
        assert!(!m.format_changed);
        assert_eq!(m.data, b"3333");
        let m = input.recv().unwrap();
        assert!(m.format_changed);
        assert_eq!(m.format, Some(&DataFormat::UniRec("uint32 B".into())));
        assert!(input.recv().unwrap().is_eos());
        assert!(input.recv().unwrap().is_eos(), "after the last batch");
        assert!(input.ended());

        let mut bad =
            crate::Input::from_jetstream_batches("j:t", vec![(None, None, frame(&[b"x"]))]);
        let e = bad.recv().unwrap_err().to_string();
        assert!(e.contains("Nemea-Format"), "{e}");
        let mut cut = crate::Input::from_jetstream_batches(
            "j:t",
            vec![(a.0.clone(), a.1.clone(), vec![0, 9, 1, 2])],
        );
        let e = cut.recv().unwrap_err().to_string();
        assert!(e.contains("longer than the rest of its buffer"), "{e}");
    }

    #[test]
    fn stream_subjects_are_matched_as_nats_does() {
        let t = |subjects: &[&str], subject: &str| {
            let v: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
            stream_takes("S", &v, subject)
        };
        assert!(t(&["a.b"], "a.b").is_ok());
        assert!(t(&["a.*"], "a.b").is_ok());
        assert!(t(&["a.>"], "a.b.c").is_ok());
        assert!(t(&["a.*"], "a.b.c").is_err());
        let e = t(&["x", "y"], "a.b").unwrap_err();
        assert!(
            e.contains("does not take subject a.b (its subjects: x, y)"),
            "{e}"
        );
    }
}
