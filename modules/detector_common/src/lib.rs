//! detector_common — what the nemea-rs detectors share: the flow fields they
//! read, a fast hasher for their tables, the record loop of their binaries
//! (one UniRec input with required fields, one UniRec alert output) and the
//! windowed loop of the alert aggregators.
//!
//! The detector logic itself lives in each detector's library as a pure state
//! machine implementing [`FlowDetector`]: flows (with their own times) in,
//! alerts out. No sockets and no wall clock there.
#![forbid(unsafe_code)]

pub mod files;

use libtrap::records::{Next, Records};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use unirec::{
    FieldType, RecordBuilder, RecordError, RecordRef, Scalar, Template, TemplateError, UrIp, UrTime,
};

/// The flow fields the detectors read. Fields a detector does not require
/// are zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u8,
    pub packets: u32,
    pub bytes: u64,
    pub time_first: UrTime,
    pub time_last: UrTime,
    /// How the source of the record chose the server (the destination),
    /// when it says (session_probe's `SERVER_ID_METHOD`: 1 SYN seen,
    /// 2 destination port < 1024, 3 source port < 1024, 4 the lower port);
    /// 0 for flows, which do not.
    pub server_rule: u8,
}

/// session_probe's mining features, the fields [`FlowReader`] reads as a
/// flow from the client to the server (a detector's
/// [`FlowDetector::alternative_spec`]).
pub const SESSION_SPEC: &str = "ipaddr SERVER_IP,ipaddr CLIENT_IP,uint16 SERVER_PORT,\
uint16 CLIENT_PORT,uint8 PROTOCOL,uint32 N_PACKETS_SERVER,uint32 N_PACKETS_CLIENT,\
uint64 N_BITS_SERVER,uint64 N_BITS_CLIENT,time TIME_FIRST,time TIME_LAST,uint8 SERVER_ID_METHOD";

/// TCP flag bits as in UniRec's TCP_FLAGS.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Reads [`Flow`]s from records of one template.
#[derive(Clone, Debug)]
pub struct FlowReader {
    /// Offset of each field of [`FIELDS`] in the fixed part, when the
    /// template has it with the expected type.
    at: [Option<usize>; 10],
    /// session_probe's mining features: the client's packets and the bits of
    /// both sides, added to PACKETS (the server's) and BYTES; and the rule.
    session: Option<SessionFields>,
}

/// Offsets of the fields of session_probe's mining template beyond those
/// read as a flow's.
#[derive(Clone, Copy, Debug)]
struct SessionFields {
    packets_client: usize,
    bits_server: usize,
    bits_client: usize,
    method: usize,
}

/// The fields a [`Flow`] is read from, with their types.
const FIELDS: [(&str, Scalar); 10] = [
    ("SRC_IP", Scalar::IpAddr),
    ("DST_IP", Scalar::IpAddr),
    ("SRC_PORT", Scalar::U16),
    ("DST_PORT", Scalar::U16),
    ("PROTOCOL", Scalar::U8),
    ("TCP_FLAGS", Scalar::U8),
    ("PACKETS", Scalar::U32),
    ("BYTES", Scalar::U64),
    ("TIME_FIRST", Scalar::Time),
    ("TIME_LAST", Scalar::Time),
];

/// The `N` bytes at `at` (fixed fields of a checked record are in range; a
/// short record reads as absent).
#[inline(always)]
fn bytes_at<const N: usize>(data: &[u8], at: Option<usize>) -> Option<[u8; N]> {
    let at = at?;
    data.get(at..at + N)?.try_into().ok()
}

impl FlowReader {
    /// Reads flows, or session_probe's mining features (SERVER_IP,
    /// CLIENT_IP, …, SERVER_ID_METHOD) as flows from the client to the
    /// server with both sides' packets and bytes.
    pub fn new(tmpl: &Template) -> FlowReader {
        let offset = |name: &str, ty: Scalar| {
            let f = tmpl.field(tmpl.find(name)?)?;
            (f.ty() == FieldType::Scalar(ty)).then(|| f.offset())
        };
        let session = (|| {
            Some(SessionFields {
                packets_client: offset("N_PACKETS_CLIENT", Scalar::U32)?,
                bits_server: offset("N_BITS_SERVER", Scalar::U64)?,
                bits_client: offset("N_BITS_CLIENT", Scalar::U64)?,
                method: offset("SERVER_ID_METHOD", Scalar::U8)?,
            })
        })()
        .filter(|_| tmpl.find("SRC_IP").is_none() && tmpl.find("SERVER_IP").is_some());
        let at = FIELDS.map(|(name, ty)| {
            let name = match (session.is_some(), name) {
                (true, "SRC_IP") => "CLIENT_IP",
                (true, "DST_IP") => "SERVER_IP",
                (true, "SRC_PORT") => "CLIENT_PORT",
                (true, "DST_PORT") => "SERVER_PORT",
                (true, "PACKETS") => "N_PACKETS_SERVER",
                (_, n) => n,
            };
            offset(name, ty)
        });
        FlowReader { at, session }
    }

    /// The flow in `rec` (a record of the template given to [`new`](Self::new)).
    /// Fields the template lacks read as zero. This is the detectors' hot
    /// path: offsets are resolved once per template, so a record costs a
    /// few loads.
    #[inline]
    pub fn read(&self, rec: &RecordRef<'_>) -> Flow {
        let (d, a) = (rec.bytes(), &self.at);
        let ip = |i: usize| bytes_at::<16>(d, a[i]).map(UrIp).unwrap_or_default();
        let time = |i: usize| {
            bytes_at::<8>(d, a[i]).map_or(UrTime::default(), |b| UrTime(u64::from_le_bytes(b)))
        };
        let mut f = Flow {
            src_ip: ip(0),
            dst_ip: ip(1),
            src_port: bytes_at::<2>(d, a[2]).map_or(0, u16::from_le_bytes),
            dst_port: bytes_at::<2>(d, a[3]).map_or(0, u16::from_le_bytes),
            protocol: bytes_at::<1>(d, a[4]).map_or(0, |b| b[0]),
            tcp_flags: bytes_at::<1>(d, a[5]).map_or(0, |b| b[0]),
            packets: bytes_at::<4>(d, a[6]).map_or(0, u32::from_le_bytes),
            bytes: bytes_at::<8>(d, a[7]).map_or(0, u64::from_le_bytes),
            time_first: time(8),
            time_last: time(9),
            server_rule: 0,
        };
        if let Some(s) = &self.session {
            let u32_at = |at| bytes_at::<4>(d, Some(at)).map_or(0, u32::from_le_bytes);
            let u64_at = |at| bytes_at::<8>(d, Some(at)).map_or(0, u64::from_le_bytes);
            f.packets = f.packets.saturating_add(u32_at(s.packets_client));
            f.bytes = u64_at(s.bits_server).saturating_add(u64_at(s.bits_client)) / 8;
            f.server_rule = bytes_at::<1>(d, Some(s.method)).map_or(0, |b| b[0]);
        }
        f
    }
}

/// FxHash (rustc's hasher, with a final rotation): much faster than SipHash
/// for the small integer
/// and address keys of the detectors' tables. Not DoS resistant — keys are
/// flow addresses, which an attacker can choose, but tables are bounded by
/// the detectors' own expiry.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.add(u64::from_le_bytes(a));
        }
        let rest = c.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(a));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i))
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i))
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i))
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    /// The multiply leaves the low bits depending only on the low input
    /// bits (for IPv4 keys: the first octets, often constant), and hash
    /// tables index by the low bits: rotate the well-mixed high bits down.
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Time as the flows tell it (the largest TIME_LAST seen, in seconds), with a
/// periodic task such as forgetting idle state: due one period after the
/// first flow, then every period.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowClock {
    now: u32,
    next: u32,
    every: u32,
}

impl FlowClock {
    pub fn new(every: u32) -> FlowClock {
        FlowClock {
            now: 0,
            next: 0,
            every,
        }
    }

    /// The current time (seconds).
    pub fn now(&self) -> u32 {
        self.now
    }

    /// Moves the time forward to `t` (never back); true when the periodic
    /// task is due.
    pub fn advance(&mut self, t: u32) -> bool {
        if t <= self.now {
            return false;
        }
        self.now = t;
        if self.next == 0 {
            self.next = t.saturating_add(self.every);
            false
        } else if t >= self.next {
            self.next = t.saturating_add(self.every);
            true
        } else {
            false
        }
    }

    /// Jumps to the end of time (end of input: everything is idle).
    pub fn end(&mut self) {
        self.now = u32::MAX;
    }
}

/// A detector's state machine.
pub trait FlowDetector {
    type Alert;
    /// The required input fields (`type NAME,...`).
    fn input_spec(&self) -> &'static str;
    /// Another template the detector reads instead (session_probe's session
    /// features, read as flows by [`FlowReader`]), if any.
    fn alternative_spec(&self) -> Option<&'static str> {
        None
    }
    /// The alert template (`type NAME,...`).
    fn output_spec(&self) -> &'static str;
    /// One flow; alerts it causes are appended to `out`.
    fn flow(&mut self, f: &Flow, out: &mut Vec<Self::Alert>);
    /// End of input: alerts still pending.
    fn finish(&mut self, out: &mut Vec<Self::Alert>);
    /// Writes one alert into a builder of the output template.
    fn encode(&self, a: &Self::Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError>;
    /// The alerts that `flows` cause, one after another (without
    /// [`finish`](FlowDetector::finish)): for tests.
    fn feed(&mut self, flows: impl IntoIterator<Item = Flow>) -> Vec<Self::Alert>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        for f in flows {
            self.flow(&f, &mut out);
        }
        out
    }
}

/// A detector whose alerts are also handed to `tap` (to log them, say),
/// in the order they are sent.
pub struct Tap<D: FlowDetector, F: FnMut(&D::Alert)> {
    pub inner: D,
    pub tap: F,
}

impl<D: FlowDetector, F: FnMut(&D::Alert)> FlowDetector for Tap<D, F> {
    type Alert = D::Alert;
    fn input_spec(&self) -> &'static str {
        self.inner.input_spec()
    }
    fn output_spec(&self) -> &'static str {
        self.inner.output_spec()
    }
    fn flow(&mut self, f: &Flow, out: &mut Vec<Self::Alert>) {
        let before = out.len();
        self.inner.flow(f, out);
        out[before..].iter().for_each(&mut self.tap);
    }
    fn finish(&mut self, out: &mut Vec<Self::Alert>) {
        let before = out.len();
        self.inner.finish(out);
        out[before..].iter().for_each(&mut self.tap);
    }
    fn encode(&self, a: &Self::Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        self.inner.encode(a, b)
    }
}

/// A detector's error; each says its cause once: the wrapped error is
/// either the whole text (`transparent`) or part of it, never also a
/// `source()` (anyhow's `{:#}` would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Trap(#[from] TrapError),
    #[error("bad template: {0}")]
    Template(TemplateError),
    #[error("cannot encode an alert: {0}")]
    Encode(RecordError),
    #[error("{0}")]
    Input(String),
}

impl From<TemplateError> for DetectError {
    fn from(e: TemplateError) -> Self {
        DetectError::Template(e)
    }
}

impl From<RecordError> for DetectError {
    fn from(e: RecordError) -> Self {
        DetectError::Encode(e)
    }
}

/// What a detector run saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStats {
    pub flows: u64,
    pub alerts: u64,
}

/// A template's reader, for [`Records`].
fn flow_reader(t: &Template) -> Result<FlowReader, Infallible> {
    Ok(FlowReader::new(t))
}

/// The record loop of a detector binary: `ifc` has one input (flows, with
/// the detector's required fields) and one output (alerts). Ends at
/// end-of-stream or on a signal, flushes pending alerts and forwards the
/// end-of-stream message when `eos`.
pub fn run<D: FlowDetector>(ifc: &str, det: &mut D, eos: bool) -> Result<RunStats, DetectError> {
    let out_tmpl = Template::parse(det.output_spec())?;
    // Validate our own spec early (a programming error otherwise).
    Template::parse(det.input_spec())?;
    let mut trap = Trap::init(ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    let output = &mut outputs[0];
    input.set_required(match det.alternative_spec() {
        Some(alt) => Required::UniRecAnyOf(vec![det.input_spec().into(), alt.into()]),
        None => Required::UniRec(det.input_spec().to_string()),
    });
    output.set_format(DataFormat::UniRec(out_tmpl.spec().to_string()))?;
    let mut builder = RecordBuilder::new(&out_tmpl);
    let mut buf = Vec::with_capacity(256);
    let mut alerts = Vec::new();
    let mut stats = RunStats::default();
    let mut send = |alerts: &mut Vec<D::Alert>,
                    det: &D,
                    stats: &mut RunStats,
                    output: &mut libtrap::Output|
     -> Result<(), DetectError> {
        for a in alerts.drain(..) {
            builder.clear();
            det.encode(&a, &mut builder)?;
            buf.clear();
            builder.finish(&mut buf)?;
            libtrap::ok_if_terminated(output.send(&buf))?;
            stats.alerts += 1;
        }
        Ok(())
    };
    let mut records = Records::skipping_bad_records();
    let result: Result<(), DetectError> = loop {
        let (rec, reader) = match records.next(input, flow_reader) {
            Ok(Next::Record { rec, layout, .. }) => (rec, layout),
            Ok(Next::Timeout | Next::Skipped) => continue,
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        stats.flows += 1;
        det.flow(&reader.read(&rec), &mut alerts);
        if !alerts.is_empty() {
            if let Err(e) = send(&mut alerts, det, &mut stats, output) {
                break Err(e);
            }
        }
    };
    det.finish(&mut alerts);
    let sent = send(&mut alerts, det, &mut stats, output);
    let ended = trap.end(eos);
    result?;
    sent?;
    ended?;
    Ok(stats)
}

/// An alert aggregator: alerts of a detector in, merged messages out at the
/// end of each time window (wall clock, as NEMEA's Python aggregators).
pub trait WindowAggregator {
    /// The required input fields (`type NAME,...`).
    fn input_spec(&self) -> &'static str;
    /// The format of the output messages.
    fn output_format(&self) -> Result<DataFormat, DetectError>;
    /// One input record.
    fn add_record(&mut self, rec: &RecordRef<'_>);
    /// The messages of the window that ends, appended to `out`; the state
    /// starts empty afterwards.
    fn end_window(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), DetectError>;
}

/// An aggregation window given in minutes (`-t`), which must be positive.
pub fn window_minutes(minutes: f64) -> Result<Duration, DetectError> {
    if !(minutes.is_finite() && minutes > 0.0) {
        return Err(DetectError::Input(
            "-t must be a positive number of minutes".into(),
        ));
    }
    Ok(Duration::from_secs_f64(minutes * 60.0))
}

/// The loop of an aggregator binary: `ifc` has one UniRec input and one
/// output. Flushes every `window` and at the end of the input or on a
/// signal, then forwards the end of stream.
pub fn run_windowed<A: WindowAggregator>(
    ifc: &str,
    agg: &mut A,
    window: Duration,
) -> Result<(), DetectError> {
    Template::parse(agg.input_spec())?;
    let mut trap = Trap::init(ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    let output = &mut outputs[0];
    input.set_required(Required::UniRec(agg.input_spec().to_string()));
    // Wake up now and then so a window also ends while no alerts come.
    input.set_timeout(Timeout::Micros(500_000));
    output.set_format(agg.output_format()?)?;
    let mut messages = Vec::new();
    let mut send = |agg: &mut A, output: &mut libtrap::Output| -> Result<(), DetectError> {
        agg.end_window(&mut messages)?;
        for m in messages.drain(..) {
            libtrap::ok_if_terminated(output.send(&m))?;
        }
        Ok(())
    };
    let mut records = Records::<()>::skipping_bad_records();
    let mut deadline = Instant::now() + window;
    let result: Result<(), DetectError> = loop {
        if Instant::now() >= deadline {
            if let Err(e) = send(agg, output) {
                break Err(e);
            }
            deadline = Instant::now() + window;
        }
        match records.next(input, |_| Ok::<(), Infallible>(())) {
            Ok(Next::Record { rec, .. }) => agg.add_record(&rec),
            Ok(Next::Timeout | Next::Skipped) => {}
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
    };
    let sent = send(agg, output);
    let ended = trap.end(true);
    result?;
    sent?;
    ended?;
    Ok(())
}

/// Index of `name` in `t`, or an index no template has (setters then fail
/// with [`RecordError::NoField`]): for encoding into the detector's own
/// alert template, where a missing field is a programming error caught by
/// the unit tests.
pub fn field(t: &Template, name: &str) -> usize {
    t.find(name).unwrap_or(usize::MAX)
}

/// The text of element `key` in one of NEMEA's flat XML module configs
/// (`<element name="key">value</element>` or `<key>value</key>`), trimmed;
/// the first occurrence counts.
pub fn nemea_xml_value(xml: &str, key: &str) -> Option<String> {
    let start = xml
        .find(&format!("name=\"{key}\""))
        .or_else(|| xml.find(&format!("<{key}>")))?;
    let rest = &xml[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find("</")?;
    Some(rest[open..open + close].trim().to_string())
}

/// Appends `text` to the log file `path`, creating missing directories.
/// A failure is reported and the detection goes on (as NEMEA's detectors
/// do with their log files).
pub fn append_log(path: &Path, text: &str) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        libtrap::log::warn(&format!("cannot write log file {}: {e}", path.display()));
    }
}

/// What the detectors' `cargo bench` binaries share: a repeatable stream of
/// synthetic flows and the timed run that prints records/s.
pub mod bench {
    use super::{Flow, FlowDetector};
    use std::time::Instant;

    /// `n` flows, the `i`-th made by `make(i, r)` from the `i`-th value `r`
    /// of a xorshift stream (the same stream on every run).
    pub fn flows(n: u32, mut make: impl FnMut(u32, u64) -> Flow) -> Vec<Flow> {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                make(i, rng)
            })
            .collect()
    }

    /// Feeds `flows` to `det`, finishes it, and prints the rate and the
    /// number of alerts as `NAME: N flows in S s = R M records/s (A alerts)`.
    pub fn measure<D: FlowDetector>(name: &str, det: &mut D, flows: &[Flow]) {
        let start = Instant::now();
        let mut out = det.feed(flows.iter().copied());
        det.finish(&mut out);
        let s = start.elapsed().as_secs_f64();
        println!(
            "{name}: {} flows in {s:.3} s = {:.2} M records/s ({} alerts)",
            flows.len(),
            flows.len() as f64 / s / 1e6,
            out.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_cause_once() {
        use std::error::Error;
        let e = DetectError::from(Template::parse("uint99 X").unwrap_err());
        assert_eq!(
            e.to_string(),
            "bad template: unknown UniRec type `uint99` for field `X`"
        );
        assert!(e.source().is_none());
        let e = DetectError::from(RecordError::TooLarge(70000));
        assert!(e.to_string().ends_with("more than UniRec's 65535"));
        assert!(e.source().is_none());
    }

    #[test]
    fn clock_runs_the_periodic_task_each_period() {
        let mut c = FlowClock::new(60);
        assert!(!c.advance(100));
        assert!(!c.advance(159));
        assert!(!c.advance(120), "time never goes back");
        assert_eq!(c.now(), 159);
        assert!(c.advance(160));
        assert!(!c.advance(219));
        assert!(c.advance(220));
        c.end();
        assert_eq!(c.now(), u32::MAX);
    }

    #[test]
    fn reader_reads_the_fields_it_finds() {
        let t = Template::parse("ipaddr SRC_IP,uint16 DST_PORT,time TIME_LAST,uint8 TCP_FLAGS")
            .unwrap();
        let mut b = RecordBuilder::new(&t);
        b.set_ip(t.find("SRC_IP").unwrap(), UrIp::parse("10.0.0.1").unwrap())
            .unwrap();
        b.set_u16(t.find("DST_PORT").unwrap(), 22).unwrap();
        b.set_u8(t.find("TCP_FLAGS").unwrap(), tcp::SYN).unwrap();
        b.set_time(t.find("TIME_LAST").unwrap(), UrTime::from_secs_millis(5, 0))
            .unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let f = FlowReader::new(&t).read(&rec);
        assert_eq!(f.src_ip.to_string(), "10.0.0.1");
        assert_eq!(f.dst_port, 22);
        assert_eq!(f.tcp_flags, tcp::SYN);
        assert_eq!(f.time_last.secs(), 5);
        assert_eq!(f.packets, 0);
    }

    /// session_probe's mining template reads as a flow from the client to
    /// the server: both sides' packets, the bits as bytes, the method.
    #[test]
    fn session_features_read_as_a_flow_to_the_server() {
        let t = Template::parse(&format!("{SESSION_SPEC},uint32 WINDOW_ID")).unwrap();
        let mut b = RecordBuilder::new(&t);
        let i = |n: &str| t.find(n).unwrap();
        b.set_ip(i("SERVER_IP"), UrIp::parse("198.51.100.5").unwrap())
            .unwrap();
        b.set_ip(i("CLIENT_IP"), UrIp::parse("198.51.100.20").unwrap())
            .unwrap();
        b.set_u16(i("SERVER_PORT"), 45000).unwrap();
        b.set_u16(i("CLIENT_PORT"), 3333).unwrap();
        b.set_u8(i("PROTOCOL"), 6).unwrap();
        b.set_u32(i("N_PACKETS_SERVER"), 11).unwrap();
        b.set_u32(i("N_PACKETS_CLIENT"), 12).unwrap();
        b.set_u64(i("N_BITS_SERVER"), 800).unwrap();
        b.set_u64(i("N_BITS_CLIENT"), 1600).unwrap();
        b.set_u8(i("SERVER_ID_METHOD"), 1).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let f = FlowReader::new(&t).read(&rec);
        assert_eq!(f.src_ip.to_string(), "198.51.100.20");
        assert_eq!(f.dst_ip.to_string(), "198.51.100.5");
        assert_eq!((f.src_port, f.dst_port, f.protocol), (3333, 45000, 6));
        assert_eq!((f.packets, f.bytes, f.server_rule), (23, 300, 1));
        // A flow template with the same names is read as a flow.
        let t = Template::parse("ipaddr SRC_IP,uint8 SERVER_ID_METHOD").unwrap();
        let buf = vec![0u8; t.fixed_size()];
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        assert_eq!(FlowReader::new(&t).read(&rec).server_rule, 0);
    }

    /// Alerts on every second flow (its number) and once at the end (0).
    struct Echo(u32);
    impl FlowDetector for Echo {
        type Alert = u32;
        fn input_spec(&self) -> &'static str {
            "uint8 TCP_FLAGS"
        }
        fn output_spec(&self) -> &'static str {
            "uint32 N"
        }
        fn flow(&mut self, _: &Flow, out: &mut Vec<u32>) {
            self.0 += 1;
            if self.0.is_multiple_of(2) {
                out.push(self.0);
            }
        }
        fn finish(&mut self, out: &mut Vec<u32>) {
            out.push(0);
        }
        fn encode(&self, _: &u32, _: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
            Ok(())
        }
    }

    #[test]
    fn tap_sees_each_alert_once_in_order() {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        {
            let mut d = Tap {
                inner: Echo(0),
                tap: |a: &u32| seen.push(*a),
            };
            for _ in 0..5 {
                d.flow(&Flow::default(), &mut out);
            }
            d.finish(&mut out);
        }
        assert_eq!(out, [2, 4, 0]);
        assert_eq!(seen, out);
    }

    #[test]
    fn nemea_xml_values() {
        let xml = "<configuration><struct name=\"main struct\">\n\
            <element name=\"blacklist_file\"> /tmp/b.txt </element>\n\
            <check_period>60</check_period></struct></configuration>";
        assert_eq!(
            nemea_xml_value(xml, "blacklist_file").as_deref(),
            Some("/tmp/b.txt")
        );
        assert_eq!(nemea_xml_value(xml, "check_period").as_deref(), Some("60"));
        assert_eq!(nemea_xml_value(xml, "whitelist_file"), None);
    }

    #[test]
    fn window_must_be_positive() {
        assert_eq!(window_minutes(0.5).unwrap(), Duration::from_secs(30));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(window_minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fast_map_works() {
        let mut m: FastMap<(UrIp, u16), u32> = FastMap::default();
        for i in 0..1000u16 {
            *m.entry((UrIp::default(), i % 10)).or_default() += 1;
        }
        assert_eq!(m.len(), 10);
        assert!(m.values().all(|&v| v == 100));
    }
}
