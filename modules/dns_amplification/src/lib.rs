//! dns_amplification — amplification attacks abusing a UDP service (DNS by
//! default): a server answering one client (the spoofed victim) with many
//! responses much larger than the queries. After NEMEA's
//! amplification_detection.
//!
//! Flows to the service port are queries, flows from it responses; they are
//! stored per (server, client) pair. When a pair's traffic spans more than
//! the detection window, histograms of query/response bytes and packets per
//! flow are evaluated (top-N bins: share of responses, number of responses,
//! mean response packets and bytes, mean query bytes, amplification factor)
//! and an alert carries the traffic not reported before.
//!
//! Differences from C (said in --help; `c_compat` restores C): histogram
//! bins count every flow in the bin (C counts only the flows of the largest
//! value in the bin), pairs with many big flows ("BIG" branch) are alerted
//! (C only logs them), pending pairs are evaluated at the end of the input,
//! and the inactivity sweep runs on flow time.
#![forbid(unsafe_code)]

use detector_common::{field, FastMap, Flow, FlowDetector};
use std::collections::VecDeque;
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

/// The alert template of the C detector.
pub const ALERT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint32 REQ_FLOWS,\
uint32 REQ_PACKETS,uint64 REQ_BYTES,uint32 RSP_FLOWS,uint32 RSP_PACKETS,uint64 RSP_BYTES,\
time TIME_FIRST,time TIME_LAST,uint32 EVENT_ID";

/// Values at or above this are left out of the histograms.
const BYTES_MAX: u64 = 5000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// -p: the service port.
    pub port: u16,
    /// -n: N of top-N.
    pub top: usize,
    /// -q: histogram bin width.
    pub step: u64,
    /// -a: minimal amplification factor.
    pub min_ampf: u64,
    /// -t: minimal number of responses in the top-N bins.
    pub min_flows: u64,
    /// -I: minimal share of responses in the top-N bins.
    pub min_count: f64,
    /// -y: minimal mean packets per response flow (top-N).
    pub min_resp_packets: u64,
    /// -l: minimal mean bytes per response flow (top-N).
    pub min_resp_bytes: u64,
    /// -m: maximal mean bytes per query flow (top-N).
    pub max_query_bytes: u64,
    /// -w: detection window and inactivity timeout (s).
    pub timeout: u32,
    /// -s: deletion window and sweep period (s).
    pub period: u32,
    /// -S: most flows stored per direction and pair.
    pub record_count: usize,
    /// "BIG" flows: query packets / response bytes per flow above these.
    pub big_query_packets: u64,
    pub big_response_bytes: u64,
    /// Reproduce C: overwrite binning, no alerts for BIG pairs, no
    /// evaluation at the end of input.
    pub c_compat: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 53,
            top: 5,
            step: 2,
            min_ampf: 10,
            min_flows: 300,
            min_count: 0.9,
            min_resp_packets: 2,
            min_resp_bytes: 2000,
            max_query_bytes: 400,
            timeout: 900,
            period: 300,
            record_count: 100_000,
            big_query_packets: 1000,
            big_response_bytes: 100_000,
            c_compat: false,
        }
    }
}

/// Flows, packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Totals {
    fn minus(self, o: Totals) -> Totals {
        Totals {
            flows: self.flows.saturating_sub(o.flows),
            packets: self.packets.saturating_sub(o.packets),
            bytes: self.bytes.saturating_sub(o.bytes),
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The amplifier.
    pub server: UrIp,
    /// The victim.
    pub client: UrIp,
    pub port: u16,
    pub req: Totals,
    pub rsp: Totals,
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub event_id: u32,
}

#[derive(Clone, Copy, Debug)]
struct Item {
    t: UrTime,
    bytes: u64,
    packets: u64,
}

#[derive(Debug, Default)]
struct Pair {
    q: VecDeque<Item>,
    r: VecDeque<Item>,
    tot: [Totals; 2],
    rep: [Totals; 2],
    first: UrTime,
    last: UrTime,
    id: Option<u32>,
}

impl Pair {
    fn recompute(&mut self) {
        for (d, v) in [&self.q, &self.r].into_iter().enumerate() {
            self.tot[d] = v.iter().fold(Totals::default(), |t, i| Totals {
                flows: t.flows + 1,
                packets: t.packets + i.packets,
                bytes: t.bytes + i.bytes,
            });
        }
        self.first = self
            .q
            .iter()
            .chain(&self.r)
            .map(|i| i.t)
            .min()
            .unwrap_or_default();
    }
}

/// A histogram: (bin key = upper bound, count), non-empty bins only.
type Hist = Vec<(u64, u64)>;

fn histogram(values: impl Iterator<Item = u64>, step: u64, c_compat: bool) -> Hist {
    let step = step.max(1);
    let mut raw: Vec<u64> = values.filter(|&v| v < BYTES_MAX).collect();
    raw.sort_unstable();
    let mut bins: Hist = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let bin = raw[i] / step;
        let mut j = i;
        while j < raw.len() && raw[j] / step == bin {
            j += 1;
        }
        let count = if c_compat {
            // C: the count of the largest distinct value of the bin.
            let top = raw[j - 1];
            raw[i..j].iter().filter(|&&v| v == top).count() as u64
        } else {
            (j - i) as u64
        };
        bins.push(((bin + 1) * step, count));
        i = j;
    }
    bins
}

/// The `n` bins with the largest counts (ties: larger key first).
fn top_n(h: &Hist, n: usize) -> Hist {
    let mut v = h.clone();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    v.truncate(n);
    v
}

fn sum_v(h: &Hist) -> u64 {
    h.iter().map(|b| b.1).sum()
}

fn sum_k(h: &Hist) -> u64 {
    h.iter().map(|b| b.0).sum()
}

fn avg(h: &Hist) -> u64 {
    let n = sum_v(h);
    h.iter()
        .map(|b| b.0 * b.1)
        .sum::<u64>()
        .checked_div(n)
        .unwrap_or(0)
}

/// The detector state.
/// One stored flow of a pair, as the per-pair log lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// TIME_FIRST of the flow.
    pub time: UrTime,
    pub query: bool,
    pub packets: u64,
    pub bytes: u64,
}

/// What C NEMEA's `-d DIR/` writes for a pair judged an attack: the pair
/// and its stored flows in time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairLog {
    /// Judged by the "BIG" rule (logged under `BIG/`).
    pub big: bool,
    pub server: UrIp,
    pub client: UrIp,
    pub lines: Vec<LogLine>,
}

impl PairLog {
    /// The file under the log directory: `[BIG/]<server>-<client>.log`.
    pub fn file_name(&self) -> String {
        let dir = if self.big { "BIG/" } else { "" };
        format!("{dir}{}-{}.log", self.server, self.client)
    }

    /// The text appended to the file: a header line, then one line per
    /// flow, `YYYY-mm-dd HH:MM:SS.mmm<TAB>Q|R<TAB>packets<TAB>bytes` (UTC).
    pub fn text(&self) -> String {
        let mut out = format!(
            "Abused server IP: {}   Target IP: {}\n",
            self.server, self.client
        );
        let mut stamp = Vec::with_capacity(26);
        for l in &self.lines {
            stamp.clear();
            l.time.write_text(&mut stamp);
            stamp.truncate(23); // milliseconds
            stamp[10] = b' ';
            out.push_str(&String::from_utf8_lossy(&stamp));
            out.push_str(&format!(
                "\t{}\t{}\t{}\n",
                if l.query { 'Q' } else { 'R' },
                l.packets,
                l.bytes
            ));
        }
        out
    }
}

/// Receives the per-pair logs (the binary writes them to files).
pub struct LogSink(pub Box<dyn FnMut(&PairLog)>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    pairs: FastMap<(UrIp, UrIp), Pair>,
    now: u32,
    next_sweep: u32,
    next_id: u32,
    log: Option<LogSink>,
}

enum Verdict {
    None,
    Big,
    Complex,
}

impl Detector {
    pub fn new(cfg: Config) -> Detector {
        Detector {
            cfg,
            pairs: FastMap::default(),
            now: 0,
            next_sweep: 0,
            next_id: 0,
            log: None,
        }
    }

    /// Hands the flows of every pair judged an attack (alerted or, in C
    /// mode, a "BIG" pair) to `sink`, as C's `-d` log directory does.
    pub fn set_log_sink(&mut self, sink: LogSink) {
        self.log = Some(sink);
    }

    /// Pairs currently tracked.
    pub fn tracked(&self) -> usize {
        self.pairs.len()
    }

    fn judge(&self, p: &Pair) -> Verdict {
        let c = &self.cfg;
        if p.tot[0].flows == 0 || p.tot[1].flows == 0 {
            return Verdict::None;
        }
        let (qp, rp) = (p.tot[0].packets, p.tot[1].packets);
        if qp >= 30 && rp / qp >= 5 {
            let max_qp = p.q.iter().map(|i| i.packets).max().unwrap_or(0);
            let max_qb = p.q.iter().map(|i| i.bytes).max().unwrap_or(0);
            let max_rb = p.r.iter().map(|i| i.bytes).max().unwrap_or(0);
            if (max_qp > c.big_query_packets || max_rb > c.big_response_bytes)
                && max_qb > 0
                && max_rb / max_qb > c.min_ampf
            {
                return Verdict::Big;
            }
            return Verdict::None;
        }
        let h = |v: &VecDeque<Item>, bytes: bool| {
            histogram(
                v.iter().map(|i| if bytes { i.bytes } else { i.packets }),
                c.step,
                c.c_compat,
            )
        };
        let (hqb, hrb, hrp) = (h(&p.q, true), h(&p.r, true), h(&p.r, false));
        let (tqb, trb, trp) = (top_n(&hqb, c.top), top_n(&hrb, c.top), top_n(&hrp, c.top));
        let total_rb = sum_v(&hrb);
        if total_rb == 0 || tqb.is_empty() {
            return Verdict::None;
        }
        let share = sum_v(&trb) as f64 / total_rb as f64;
        let mean_q = sum_k(&tqb) / tqb.len() as u64;
        let mean_r = sum_k(&trb) / trb.len().max(1) as u64;
        let ok = share > c.min_count
            && sum_v(&trb) > c.min_flows
            && avg(&trp) > c.min_resp_packets
            && avg(&trb) > c.min_resp_bytes
            && avg(&tqb) < c.max_query_bytes
            && sum_v(&tqb) > 0
            && mean_q > 0
            && mean_r / mean_q > c.min_ampf;
        if ok {
            Verdict::Complex
        } else {
            Verdict::None
        }
    }

    /// Evaluates a pair at time `t` and slides its window. Returns whether
    /// the pair is now empty.
    fn evaluate(&mut self, key: (UrIp, UrIp), t: UrTime, out: &mut Vec<Alert>) -> bool {
        let Some(p) = self.pairs.get(&key) else {
            return true;
        };
        let verdict = self.judge(p);
        let alert = match verdict {
            Verdict::Complex => true,
            Verdict::Big => !self.cfg.c_compat,
            Verdict::None => false,
        };
        if let (Some(sink), Verdict::Big | Verdict::Complex) = (&mut self.log, &verdict) {
            (sink.0)(&pair_log(key, p, matches!(verdict, Verdict::Big)));
        }
        let keep = u64::from(self.cfg.timeout.saturating_sub(self.cfg.period));
        let mut next_id = self.next_id;
        let Some(p) = self.pairs.get_mut(&key) else {
            return true;
        };
        if alert {
            let id = *p.id.get_or_insert_with(|| {
                next_id += 1;
                next_id
            });
            out.push(Alert {
                server: key.0,
                client: key.1,
                port: self.cfg.port,
                req: p.tot[0].minus(p.rep[0]),
                rsp: p.tot[1].minus(p.rep[1]),
                time_first: p.first,
                time_last: t,
                event_id: id,
            });
        }
        self.next_id = next_id;
        let cut = u64::from(t.secs()).saturating_sub(keep);
        p.q.retain(|i| u64::from(i.t.secs()) >= cut);
        p.r.retain(|i| u64::from(i.t.secs()) >= cut);
        if p.q.is_empty() && p.r.is_empty() {
            self.pairs.remove(&key);
            return true;
        }
        p.recompute();
        p.rep = p.tot;
        false
    }
}

/// The log of a pair: its queries and responses merged by time (queries
/// first at equal times).
fn pair_log(key: (UrIp, UrIp), p: &Pair, big: bool) -> PairLog {
    let line = |query: bool| {
        move |i: &Item| LogLine {
            time: i.t,
            query,
            packets: i.packets,
            bytes: i.bytes,
        }
    };
    let mut lines: Vec<LogLine> = p.q.iter().map(line(true)).collect();
    lines.extend(p.r.iter().map(line(false)));
    lines.sort_by_key(|l| (l.time, !l.query));
    PairLog {
        big,
        server: key.0,
        client: key.1,
        lines,
    }
}

impl FlowDetector for Detector {
    type Alert = Alert;

    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }

    fn output_spec(&self) -> &'static str {
        ALERT_SPEC
    }

    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        let (query, key) = if f.dst_port == self.cfg.port {
            (true, (f.dst_ip, f.src_ip))
        } else if f.src_port == self.cfg.port {
            (false, (f.src_ip, f.dst_ip))
        } else {
            return;
        };
        let t = f.time_last.secs();
        self.now = self.now.max(t);
        if self.next_sweep == 0 {
            self.next_sweep = t + self.cfg.period;
        } else if self.now >= self.next_sweep {
            self.next_sweep = self.now + self.cfg.period;
            let (now, w) = (self.now, self.cfg.timeout);
            self.pairs
                .retain(|_, p| now.saturating_sub(p.last.secs()) <= w);
        }
        let item = Item {
            t: f.time_first,
            bytes: f.bytes,
            packets: u64::from(f.packets),
        };
        let cap = self.cfg.record_count.max(1);
        let p = self.pairs.entry(key).or_default();
        let fresh = p.q.is_empty() && p.r.is_empty();
        let (v, d) = if query { (&mut p.q, 0) } else { (&mut p.r, 1) };
        if v.len() >= cap {
            v.pop_front();
        }
        v.push_back(item);
        p.tot[d].flows += 1;
        p.tot[d].packets += item.packets;
        p.tot[d].bytes += item.bytes;
        if fresh {
            p.first = f.time_first;
            p.last = f.time_last;
            return;
        }
        p.last = f.time_last;
        if t.saturating_sub(p.first.secs()) > self.cfg.timeout {
            self.evaluate(key, f.time_last, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Alert>) {
        if self.cfg.c_compat {
            return;
        }
        let mut keys: Vec<_> = self.pairs.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            let t = self.pairs.get(&k).map(|p| p.last).unwrap_or_default();
            self.evaluate(k, t, out);
        }
        self.pairs.clear();
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        let u32c = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        b.set_ip(i("SRC_IP"), a.server)?;
        b.set_ip(i("DST_IP"), a.client)?;
        b.set_u16(i("SRC_PORT"), a.port)?;
        b.set_u32(i("REQ_FLOWS"), u32c(a.req.flows))?;
        b.set_u32(i("REQ_PACKETS"), u32c(a.req.packets))?;
        b.set_u64(i("REQ_BYTES"), a.req.bytes)?;
        b.set_u32(i("RSP_FLOWS"), u32c(a.rsp.flows))?;
        b.set_u32(i("RSP_PACKETS"), u32c(a.rsp.packets))?;
        b.set_u64(i("RSP_BYTES"), a.rsp.bytes)?;
        b.set_time(i("TIME_FIRST"), a.time_first)?;
        b.set_time(i("TIME_LAST"), a.time_last)?;
        b.set_u32(i("EVENT_ID"), a.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u32 = 1_700_000_000;

    fn udp(src: &str, sp: u16, dst: &str, dp: u16, packets: u32, bytes: u64, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(dst).unwrap(),
            src_port: sp,
            dst_port: dp,
            protocol: 17,
            packets,
            bytes,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t, 0),
            ..Flow::default()
        }
    }

    /// `n` query/response flow pairs over `secs` seconds.
    fn attack(n: u32, secs: u32, rsp_bytes: u64) -> Vec<Flow> {
        let mut v = Vec::new();
        for i in 0..n {
            let t = T0 + i * secs / n;
            let sp = 10_000 + i as u16;
            v.push(udp("203.0.113.10", sp, "192.0.2.53", 53, 3, 180, t));
            v.push(udp("192.0.2.53", 53, "203.0.113.10", sp, 3, rsp_bytes, t));
        }
        v
    }

    fn run(cfg: Config, flows: &[Flow]) -> Vec<Alert> {
        let mut d = Detector::new(cfg);
        let mut out = Vec::new();
        for f in flows {
            d.flow(f, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn histograms() {
        let v = [1u64, 1, 2, 3, 3, 3, 9, 6000];
        assert_eq!(
            histogram(v.into_iter(), 2, false),
            vec![(2, 2), (4, 4), (10, 1)]
        );
        // C: the bin [2,4) gets the count of its largest value (3 → 3 times).
        assert_eq!(
            histogram(v.into_iter(), 2, true),
            vec![(2, 2), (4, 3), (10, 1)]
        );
        let h = vec![(2, 5), (4, 5), (6, 1)];
        assert_eq!(top_n(&h, 2), vec![(4, 5), (2, 5)]);
        assert_eq!(avg(&h), (10 + 20 + 6) / 11);
    }

    #[test]
    fn normal_dns_is_silent() {
        // Answers about as large as the queries.
        assert!(run(Config::default(), &attack(2000, 1800, 400)).is_empty());
        // Too few responses in the window.
        assert!(run(Config::default(), &attack(200, 1800, 2400)).is_empty());
    }

    #[test]
    fn amplification_alerts_with_the_expected_fields() {
        let cfg = Config {
            timeout: 60,
            period: 30,
            min_flows: 100,
            ..Config::default()
        };
        // 4 query/response pairs per second for 100 s.
        let out = run(cfg, &attack(400, 100, 2400));
        assert!(!out.is_empty());
        let a = &out[0];
        assert_eq!(a.server.to_string(), "192.0.2.53");
        assert_eq!(a.client.to_string(), "203.0.113.10");
        assert_eq!(a.port, 53);
        assert_eq!(a.event_id, 1);
        assert_eq!(a.time_first.secs(), T0);
        assert_eq!(a.time_last.secs(), T0 + 61);
        // The query at T0 + 61 s triggers it, before its answer.
        assert_eq!(a.req.flows, 245);
        assert_eq!(a.req.bytes, 180 * 245);
        assert_eq!(a.rsp.flows, 244);
        assert_eq!(a.rsp.packets, 3 * 244);
        assert_eq!(a.rsp.bytes, 2400 * 244);
        // Later alerts of the pair carry only new traffic and the same id.
        assert!(out.iter().all(|x| x.event_id == 1));
        let flows: u64 = out.iter().map(|x| x.rsp.flows).sum();
        assert_eq!(flows, 400);
    }

    #[test]
    fn c_compat_sends_nothing_at_end_of_input() {
        let cfg = Config {
            timeout: 600,
            min_flows: 100,
            c_compat: true,
            ..Config::default()
        };
        assert!(run(cfg, &attack(400, 100, 2400)).is_empty());
        let cfg = Config {
            c_compat: false,
            ..cfg
        };
        assert_eq!(run(cfg, &attack(400, 100, 2400)).len(), 1);
    }

    #[test]
    fn attack_pairs_are_logged_like_c() {
        use std::sync::{Arc, Mutex};
        let cfg = Config {
            timeout: 60,
            period: 30,
            min_flows: 100,
            ..Config::default()
        };
        let logs: Arc<Mutex<Vec<PairLog>>> = Arc::default();
        let mut d = Detector::new(cfg);
        let sink = Arc::clone(&logs);
        d.set_log_sink(LogSink(Box::new(move |l| {
            sink.lock().unwrap().push(l.clone())
        })));
        let mut out = Vec::new();
        for f in attack(400, 100, 2400) {
            d.flow(&f, &mut out);
        }
        d.finish(&mut out);
        let logs = logs.lock().unwrap();
        // One log per alert; normal traffic (other tests) logs nothing.
        assert_eq!(logs.len(), out.len());
        let first = &logs[0];
        assert!(!first.big);
        assert_eq!(first.file_name(), "192.0.2.53-203.0.113.10.log");
        assert_eq!(first.lines.len(), 245 + 244);
        let text = first.text();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("Abused server IP: 192.0.2.53   Target IP: 203.0.113.10")
        );
        // T0 = 2023-11-14 22:13:20 UTC: its four queries, then their answers.
        let body: Vec<&str> = lines.collect();
        assert_eq!(body[0], "2023-11-14 22:13:20.000\tQ\t3\t180");
        assert_eq!(body[3], body[0]);
        assert_eq!(body[4], "2023-11-14 22:13:20.000\tR\t3\t2400");
        assert_eq!(body.iter().filter(|l| l.contains("\tR\t")).count(), 244);
        assert_eq!(body.last(), Some(&"2023-11-14 22:14:21.000\tQ\t3\t180"));
        let big = PairLog {
            big: true,
            ..first.clone()
        };
        assert_eq!(big.file_name(), "BIG/192.0.2.53-203.0.113.10.log");
    }
}
